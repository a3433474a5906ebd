import OutputFiles
import Foundation
import MemoryModel
import Planner
import Profiles
import Reports
import XCTest

/// Writes a sample report folder for looking at (scripts/render-report-png.sh renders its page):
/// `SNNMEM_SAMPLE_REPORT=/tmp/sample swift test --filter SampleReportTests`. Skipped otherwise.
final class SampleReportTests: XCTestCase {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testWriteSampleReport() throws {
        guard let folder = ProcessInfo.processInfo.environment["SNNMEM_SAMPLE_REPORT"] else {
            throw XCTSkip("set SNNMEM_SAMPLE_REPORT to a folder to write a sample report")
        }
        let profile = try ProfileLoader.load(path: Self.repositoryRoot.appendingPathComponent("profiles/cifarnet.yaml").path)
        var schedules: [(planned: Timeline, measured: Timeline?)] = []
        var entries: [ComparisonReport.Entry] = []
        for strategy in [Strategy.bptt, .checkpoint, .sltt] {
            let plan = try Planner.plan(profile, strategy: strategy)
            let planned = Timeline(plan: plan)
            let measured = Self.fakeMeasurement(of: planned)
            schedules.append((planned, measured))
            let m = measured.sweep
            entries.append(.init(strategy: strategy.rawValue, segment: plan.segment, predictedPeakBytes: plan.peakBytes, measuredPeakBytes: m.peakBytes,
                                 predictedAllocatedPeakBytes: plan.peakBytes, measuredAllocatedPeakBytes: m.peakBytes,
                                 jemallocPeakBytes: m.peakBytes + m.peakBytes / 20, measuredHeldForBackwardBytes: plan.activationBytes,
                                 predictedHeldForBackwardBytes: plan.activationBytes, stepMs: measured.events.last?.timeMs ?? 0,
                                 forwardFlops: plan.forwardFlops, recomputeFlops: plan.recomputeFlops, backwardFlops: plan.backwardFlops,
                                 gradientMaxRelDiff: strategy == .bptt ? nil : 3e-7, gradientReference: strategy == .bptt ? nil : "bptt",
                                 loss: 2.3021, firstDifference: nil))
        }
        let comparison = ComparisonReport(profile: profile.name, batch: profile.batch, timesteps: profile.timesteps, steps: 1,
                                          strategies: entries, notApplicable: [.init(strategy: "trevsnn", reason: "not a T-RevSNN network")])
        let files = try ReportBundle.files(title: "\(profile.name): planned and (simulated) measured memory", comparison: comparison,
                                           schedules: schedules)
        try AtomicOutput.writeFolder(files, to: folder)
        let sweepPoints = [2, 4, 8, 16]
        let series = try [Strategy.bptt, .checkpoint, .sltt].map { strategy in
            SweepReport.Series(strategy: strategy.rawValue, points: try sweepPoints.map { t in
                let plan = try Planner.plan(profile, strategy: strategy, options: .init(timesteps: t))
                return .init(value: t, heldForBackwardBytes: plan.activationBytes, measuredHeldForBackwardBytes: t <= 4 ? plan.activationBytes : nil,
                             peakBytes: plan.peakBytes)
            })
        }
        try AtomicOutput.writeFolder(ReportBundle.sweepFiles(SweepReport(axis: "timesteps", profile: profile.name, batch: profile.batch,
                                                                          strategies: series, notApplicable: [])),
                                     to: folder + "-sweep")
    }

    /// The plan's events at invented times: backward twice as slow as forward, the optimizer quick.
    static func fakeMeasurement(of plan: Timeline) -> Timeline {
        var clock = 0.0
        var events = plan.events
        for index in events.indices {
            switch events[index].phase {
            case .backward, .recompute: clock += 0.02
            case .optimizerStep, .setup: clock += 0.002
            case .forward: clock += 0.01
            }
            events[index].timeMs = clock
        }
        return Timeline(title: plan.title.replacingOccurrences(of: "(planned)", with: "(measured)"), source: "measured",
                        strategy: plan.strategy, events: events)
    }
}
