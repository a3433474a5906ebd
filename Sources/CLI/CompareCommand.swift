import OutputFiles
import Allocator
import ArgumentParser
import Engine
import Foundation
import MemoryModel
import Planner
import Profiles
import Reports

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Run every applicable schedule on the same seed and data; measured against predicted, side by side.")

    @OptionGroup var options: ProfileOptions
    @OptionGroup var batchOption: BatchOption

    @Option(help: OutputFormat.help)
    var format: OutputFormat = .table

    @Option(help: "Comma-separated strategies, or all.")
    var strategies: String = "all"

    @Option(help: "Checkpoint segment length k (default round(sqrt(T))).")
    var segment: Int?

    @Option(help: "Training steps per strategy.")
    var steps: Int = 2

    @Option(help: "Write report.html, report.md, report.json, trace.json (Chrome trace) and each schedule's measured trace into this folder (replaced whole).")
    var out: String?

    @Option(help: "Seed for weights and data.")
    var seed: UInt64 = 1

    func validate() throws {
        _ = try parseStrategies()
        if steps < 1 { throw ValidationError("--steps must be at least 1, got \(steps)") }
        try checkStepCount(steps)
    }

    func parseStrategies() throws -> [Strategy] { try Self.parse(strategies: strategies) }

    func run() throws {
        // Output paths are checked before the training, not after it.
        if let out { try reportingErrors { try AtomicOutput.checkFolderTarget(out) } }
        let profile = try options.loadProfile()
        let requested = try parseStrategies()
        var applicable: [Strategy] = []
        var skipped: [ComparisonReport.NotApplicable] = []
        for strategy in requested {
            if let reason = strategy.notApplicableReason(profile) {
                skipped.append(.init(strategy: strategy.rawValue, reason: reason))
            } else {
                applicable.append(strategy)
            }
        }
        guard !applicable.isEmpty else {
            throw CLIFailure.badInput("none of the strategies applies to \(profile.sourcePath): "
                + skipped.map { "\($0.strategy): \($0.reason)" }.joined(separator: "; "))
        }
        let progress = ProgressBar(total: applicable.count * steps + 1, label: "\(profile.name) compare")
        progress.begin("gradients of every schedule")
        defer { progress.finish() }
        var done = 0
        var entries: [ComparisonReport.Entry] = []
        var traces: [String: Data] = [:]
        var schedules: [(planned: Timeline, measured: Timeline?)] = []
        let agreements = try reportingErrors {
            try GradientAgreement.measure(profile: profile, strategies: applicable, batch: batchOption.batch, timesteps: options.timesteps,
                                          segment: segment, seed: seed)
        }
        done += 1
        progress.update(done, detail: "gradients")
        for (strategy, agreement) in zip(applicable, agreements) {
            let result = try reportingErrors {
                try MemoryRun.measure(profile: profile, strategy: strategy, batch: batchOption.batch, timesteps: options.timesteps,
                                      segment: strategy == .checkpoint ? segment : nil, steps: steps, seed: seed) { _, _, _ in
                    done += 1
                    progress.update(done, detail: strategy.rawValue)
                }
            }
            let plan = try reportingErrors {
                try Planner.plan(profile, strategy: strategy, options: .init(batch: batchOption.batch, timesteps: options.timesteps,
                                                                            segment: strategy == .checkpoint ? segment : nil))
            }
            let sortedMs = result.stepMs.sorted()
            entries.append(ComparisonReport.Entry(
                strategy: strategy.rawValue, segment: result.segment, predictedPeakBytes: result.predictedPeakBytes,
                measuredPeakBytes: result.measuredPeakBytes, predictedAllocatedPeakBytes: result.predictedAllocatedPeakBytes,
                measuredAllocatedPeakBytes: result.measuredAllocatedPeakBytes, jemallocPeakBytes: result.jemallocPeakBytes,
                measuredHeldForBackwardBytes: result.measuredActivationBytes, predictedHeldForBackwardBytes: result.predictedActivationBytes,
                stepMs: sortedMs[sortedMs.count / 2], forwardFlops: plan.forwardFlops, recomputeFlops: plan.recomputeFlops,
                backwardFlops: plan.backwardFlops, gradientMaxRelDiff: agreement.maxRelativeDifference,
                gradientReference: agreement.reference, loss: result.loss.last ?? .nan, firstDifference: result.comparison?.firstDifference))
            if out != nil {
                traces["measured-\(strategy.rawValue).json"] = try JSONDocument.plainData(result.trace)
                schedules.append((Timeline(plan: plan), Timeline(trace: result.trace)))
            }
        }
        progress.finish()
        let report = ComparisonReport(profile: profile.name, batch: batchOption.batch ?? profile.batch, timesteps: options.timesteps ?? profile.timesteps,
                                      steps: steps, strategies: entries, notApplicable: skipped)
        switch format {
        case .json: print(try Formatting.json(report, kind: .compare))
        case .table: print(report.render(markdown: false))
        case .markdown: print(report.render(markdown: true))
        }
        if let out {
            var files = traces
            let title = "\(profile.name): batch \(report.batch), T \(report.timesteps)"
            for (name, data) in try ReportBundle.files(title: title, comparison: report, schedules: schedules) { files[name] = data }
            try reportingErrors { try AtomicOutput.writeFolder(files, to: out) }
        }
    }
}
