import Foundation
import Reports
import XCTest

/// What users read, compared with files in `__Snapshots__` (re-record with SNNMEM_RECORD_SNAPSHOTS=1).
final class SnapshotTests: XCTestCase {
    let schedules: [(planned: Timeline, measured: Timeline?)] = [(ReportFixtures.planned, ReportFixtures.measured)]

    func file(_ files: [String: Data], _ name: String) throws -> String {
        let data = try XCTUnwrap(files[name], "the bundle has no \(name)")
        return try XCTUnwrap(String(data: data, encoding: .utf8))
    }

    func testMarkdownFromTimelines() throws {
        let files = try ReportBundle.files(title: "fixed step", comparison: nil, schedules: schedules)
        assertSnapshot(try file(files, "report.md"), named: "report-timelines.md")
    }

    func testMarkdownFromComparison() throws {
        let files = try ReportBundle.files(title: "fixed step", comparison: ReportFixtures.comparison, schedules: schedules)
        assertSnapshot(try file(files, "report.md"), named: "report-comparison.md")
    }

    func testJSON() throws {
        let files = try ReportBundle.files(title: "fixed step", comparison: ReportFixtures.comparison, schedules: schedules)
        assertSnapshot(try file(files, "report.json"), named: "report.json")
    }

    func testTimelineSVG() {
        assertSnapshot(TimelineChart.svg(planned: ReportFixtures.planned, measured: ReportFixtures.measured), named: "timeline.svg")
    }

    func testPlannedOnlyTimelineSVG() {
        assertSnapshot(TimelineChart.svg(planned: ReportFixtures.planned, measured: nil), named: "timeline-planned.svg")
    }

    func testSweepOutputs() throws {
        let files = ReportBundle.sweepFiles(ReportFixtures.sweep)
        assertSnapshot(try file(files, "sweep.svg"), named: "sweep.svg")
        assertSnapshot(try file(files, "sweep.md"), named: "sweep.md")
    }
}
