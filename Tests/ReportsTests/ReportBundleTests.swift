import Foundation
import Planner
import Reports
import XCTest

final class ReportBundleTests: XCTestCase {
    func testReportFiles() throws {
        let plan = Timeline(plan: try ReportFixtures.tinyPlan(.checkpoint, timesteps: 4))
        let files = try ReportBundle.files(title: "tiny", comparison: nil, schedules: [(plan, ReportFixtures.fakeMeasurement(of: plan))])
        XCTAssertEqual(Set(files.keys), ["report.html", "report.md", "report.json", "trace.json"])
        let summary = try JSONDecoder().decode(ReportSummary.self, from: try XCTUnwrap(files["report.json"]))
        XCTAssertEqual(summary.schedules.map(\.strategy), ["checkpoint"])
        XCTAssertEqual(summary.schedules[0].planned.peakBytes, plan.sweep.peakBytes)
        XCTAssertEqual(summary.schedules[0].peakDifferenceBytes, 0)
        XCTAssertEqual(summary.schedules[0].planned.bytesByRoleAtPeak.total, plan.sweep.peakBytes)
        XCTAssertLessThanOrEqual(summary.schedules[0].planned.topLiveTensors.count, 15)
        let markdown = try XCTUnwrap(String(data: try XCTUnwrap(files["report.md"]), encoding: .utf8))
        XCTAssertTrue(markdown.hasPrefix("# tiny\n"))
    }

    func testSweepFiles() throws {
        let files = ReportBundle.sweepFiles(ReportFixtures.sweep)
        XCTAssertEqual(Set(files.keys), ["sweep.svg", "sweep.md", "sweep.json", "sweep.html"])
        XCTAssertEqual(try JSONDecoder().decode(SweepReport.self, from: try XCTUnwrap(files["sweep.json"])), ReportFixtures.sweep)
        _ = try SVGReader.read(try XCTUnwrap(String(data: try XCTUnwrap(files["sweep.svg"]), encoding: .utf8)))
        let page = try XCTUnwrap(String(data: try XCTUnwrap(files["sweep.html"]), encoding: .utf8))
        XCTAssertFalse(page.contains("http"), "the page embeds its chart without the SVG namespace URI or any link")
        XCTAssertTrue(page.contains("<svg "))
    }
}
