import OutputFiles
import ArgumentParser
import Engine
import Foundation
import MemoryModel
import Planner
import Profiles
import Reports

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Bytes held for backward per strategy over T or over depth, with the fitted growth.")

    @Argument(help: "A profile YAML file.")
    var profile: String

    @Option(help: "Comma-separated timesteps to sweep, e.g. 1,2,4,8,16.")
    var timesteps: String?

    @Option(name: .customLong("depth-scale"), help: "Comma-separated depth factors (blocks per reversible stage or T-RevSNN level), e.g. 1,2,4.")
    var depthScale: String?

    @Option(help: "Comma-separated strategies, or all.")
    var strategies: String = "all"

    @Option(help: "Batch size (default: the profile's).")
    var batch: Int?

    @Flag(help: "Also measure each point with one training step of snnmem's engine (slow for big profiles; --runtime snnmem).")
    var measure = false

    @OptionGroup var runtimeOption: RuntimeOption

    @Option(help: OutputFormat.help)
    var format: OutputFormat = .table

    @Option(help: "Write sweep.svg (log-log plot), sweep.html, sweep.md and sweep.json into this folder (replaced whole).")
    var out: String?

    func values(_ text: String, option: String) throws -> [Int] {
        let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw ValidationError("\(option) takes whole numbers of at least 1 separated by commas, e.g. 1,2,4")
        }
        return parts.map { $0! }
    }

    func validate() throws {
        guard (timesteps == nil) != (depthScale == nil) else {
            throw ValidationError("give exactly one of --timesteps and --depth-scale")
        }
        if let timesteps { for t in try values(timesteps, option: "--timesteps") { try checkPlannable(batch: nil, timesteps: t) } }
        if let depthScale { _ = try values(depthScale, option: "--depth-scale") }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
        try checkPlannable(batch: batch, timesteps: nil)
        _ = try CompareCommand.parse(strategies: strategies)
        if measure && runtimeOption.runtime != .snnmem {
            throw ValidationError("--measure trains with snnmem's engine, which only the snnmem runtime describes: add --runtime snnmem (PyTorch is measured by the Python package: python/README.md)")
        }
    }

    func run() throws {
        if let out { try reportingErrors { try AtomicOutput.checkFolderTarget(out) } }
        let base = try reportingErrors { try ProfileLoader.load(path: profile) }
        let axis = timesteps != nil ? "timesteps" : "depth"
        let points = try values(timesteps ?? depthScale!, option: axis == "timesteps" ? "--timesteps" : "--depth-scale")
        if axis == "depth" && !base.canScaleDepth {
            throw CLIFailure.badInput("\(profile): depth scaling repeats reversible blocks or T-RevSNN blocks, and this profile has none")
        }
        // Every point is checked against what can be planned before any work starts; the deepened
        // profiles are built once, here, for every strategy below.
        let largestFactor = axis == "depth" ? base.largestDepthFactor : 0
        var pointProfiles: [Profile] = []
        for value in points {
            if axis == "depth" && value > largestFactor {
                throw CLIFailure.badInput("--depth-scale \(value): \(profile) deepened \(value) times would have more than \(PlanningLimits.formatted(PlanningLimits.maxLayers)) layers, the most snnmem plans; the largest factor for it is \(largestFactor)")
            }
            let t = axis == "timesteps" ? value : base.timesteps
            let scaled = axis == "depth" ? base.scalingDepth(by: value)! : base
            pointProfiles.append(scaled)
            if let problem = scaled.sizeProblem(batch: batch ?? base.batch, timesteps: t) {
                let option = problem.quantity == .batch ? "--batch" : (axis == "timesteps" ? "--timesteps" : "the profile's timesteps")
                throw CLIFailure.badInput("\(option): \(profile): \(problem)")
            }
        }
        var series: [SweepReport.Series] = []
        var skipped: [ComparisonReport.NotApplicable] = []
        var applicable: [Strategy] = []
        for strategy in try CompareCommand.parse(strategies: strategies) {
            if let reason = strategy.notApplicableReason(base) ?? runtimeOption.runtime.notModelledReason(strategy, base) {
                skipped.append(.init(strategy: strategy.rawValue, reason: reason))
            } else {
                applicable.append(strategy)
            }
        }
        // Only the points that run are counted, so the bar reaches its end and is erased.
        let progress = ProgressBar(total: points.count * applicable.count, label: "sweep")
        if let first = applicable.first { progress.begin("\(first.rawValue) \(points[0])") }
        defer { progress.finish() }
        var done = 0
        for strategy in applicable {
            var row: [SweepReport.Point] = []
            for (value, profile) in zip(points, pointProfiles) {
                let options = Planner.Options(batch: batch, timesteps: axis == "timesteps" ? value : nil, runtime: runtimeOption.runtime,
                                              cpuThreads: runtimeOption.plannedCPUThreads)
                let plan = try reportingErrors { try Planner.plan(profile, strategy: strategy, options: options) }
                var measured: Int?
                if measure {
                    measured = try reportingErrors {
                        try MemoryRun.measure(profile: profile, strategy: strategy, batch: batch, timesteps: options.timesteps, steps: 1)
                    }.measuredActivationBytes
                }
                row.append(SweepReport.Point(value: value, heldForBackwardBytes: plan.activationBytes, measuredHeldForBackwardBytes: measured,
                                             peakBytes: plan.peakBytes))
                done += 1
                progress.update(done, detail: "\(strategy.rawValue) \(value)")
            }
            series.append(SweepReport.Series(strategy: strategy.rawValue, points: row))
        }
        progress.finish()
        let report = SweepReport(axis: axis, profile: base.name, runtime: runtimeOption.runtime.rawValue, batch: batch ?? base.batch, strategies: series, notApplicable: skipped)
        switch format {
        case .json: print(try Formatting.json(report, kind: .sweep))
        case .table: print(report.render(markdown: false))
        case .markdown: print(report.render(markdown: true))
        }
        if let out {
            try reportingErrors { try AtomicOutput.writeFolder(ReportBundle.sweepFiles(report), to: out) }
        }
    }
}

extension CompareCommand {
    static func parse(strategies text: String) throws -> [Strategy] {
        if text.lowercased() == "all" { return Strategy.allCases }
        return try text.split(separator: ",").map { name in
            guard let strategy = Strategy(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw ValidationError("unknown strategy '\(name)': use \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")) or all")
            }
            return strategy
        }
    }
}
