import OutputFiles
import ArgumentParser
import Engine
import Foundation
import MemoryModel
import Planner
import Profiles
import Reports

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Fail (exit 1) when a peak exceeds the budget or grows past its baseline: a CI gate.")

    @Argument(help: "Profile YAML files.")
    var profiles: [String]

    @Option(help: "A strategy or all (every strategy that applies to each profile).")
    var strategy: String = "all"

    @Option(help: "Batch size (default: each profile's).")
    var batch: Int?

    @Option(help: "The memory budget every peak must fit, e.g. 24GiB.")
    var budget: String

    @Option(help: "A baseline written by --write-baseline; peaks may not grow past it by more than the tolerance.")
    var baseline: String?

    @Option(help: "Allowed growth over the baseline, in percent.")
    var tolerance: Double = 0

    @Flag(help: "Measure each peak with a training step of snnmem's engine instead of only planning it (slower; --runtime snnmem).")
    var measure = false

    @Option(help: ArgumentHelp("Whose steps to plan, comma-separated: pytorch-cuda, pytorch-cpu, snnmem, or all.", valueName: "runtimes"))
    var runtime: String = Runtime.userDefault.rawValue

    @Option(name: .customLong("write-baseline"), help: "Record the current figures into this file.")
    var writeBaseline: String?

    @Option(help: "Output format: table, json or markdown.")
    var format: OutputFormat = .table

    func validate() throws {
        if profiles.isEmpty { throw ValidationError("name at least one profile") }
        _ = try parseSize(budget, option: "--budget")
        // `nan < 0` is false: test for the accepted range, not against the rejected one.
        guard tolerance.isFinite, tolerance >= 0, tolerance <= 1_000_000 else {
            throw ValidationError("--tolerance is \(tolerance): give a percentage from 0 to 1000000, e.g. --tolerance 5")
        }
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1") }
        try checkPlannable(batch: batch, timesteps: nil)
        let runtimes = try self.runtimes()
        if measure && runtimes != [.snnmem] {
            throw ValidationError("--measure trains with snnmem's engine, which only the snnmem runtime describes: add --runtime snnmem")
        }
        if strategy != "all", Strategy(rawValue: strategy) == nil {
            throw ValidationError("unknown strategy '\(strategy)': use one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")) or all")
        }
    }

    func runtimes() throws -> [Runtime] {
        if runtime.lowercased() == "all" { return Runtime.allCases }
        return try runtime.split(separator: ",").map { name in
            guard let one = Runtime(rawValue: name.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw ValidationError("unknown runtime '\(name)': use \(Runtime.allCases.map(\.rawValue).joined(separator: ", ")) or all")
            }
            return one
        }
    }

    func entry(_ profile: Profile, runtime: Runtime, strategy: Strategy) throws -> MemoryBaseline.Entry {
        let rounding: AllocatorRounding = runtime == .pytorchCUDA ? .cuda : .exact
        let plan = try reportingErrors {
            try Planner.plan(profile, strategy: strategy, options: .init(batch: batch, rounding: rounding, runtime: runtime))
        }
        var peak = plan.peakBytes
        var roles = plan.bytesByRoleAtPeak
        if measure {
            let result = try reportingErrors { try MemoryRun.measure(profile: profile, strategy: strategy, batch: batch, steps: 1) }
            peak = result.measuredPeakBytes
            let events = result.trace.events.filter { $0.trainingStep == 0 }.lifetimeEvents(measuring: .requested)
            roles = PeakSweep().run(events, allowLive: Set(events.map(\.tensorID))).bytesByRoleAtPeak
        }
        return MemoryBaseline.Entry(profile: profile.name, runtime: runtime.rawValue, strategy: strategy.rawValue, batch: plan.batch,
                                    timesteps: plan.timesteps, peakBytes: peak, bytesByRole: roles, measured: measure)
    }

    func run() throws {
        if let writeBaseline { try reportingErrors { try AtomicOutput.checkFileTarget(writeBaseline) } }
        let budgetBytes = try parseSize(budget, option: "--budget")
        let old = try baseline.map { path in try reportingErrors { try MemoryBaseline.read(path: path) } }
        var entries: [MemoryBaseline.Entry] = []
        for path in profiles {
            let profile = try reportingErrors { try ProfileLoader.load(path: path) }
            for runtime in try runtimes() {
                let strategies: [Strategy]
                if strategy == "all" {
                    strategies = Strategy.allCases.filter {
                        $0.notApplicableReason(profile) == nil && runtime.notModelledReason($0, profile) == nil
                    }
                } else {
                    let one = Strategy(rawValue: strategy)!
                    if let reason = one.notApplicableReason(profile) ?? runtime.notModelledReason(one, profile) {
                        throw CLIFailure.badInput("\(path): strategy \(one.rawValue) does not apply: \(reason)")
                    }
                    strategies = [one]
                }
                for strategy in strategies {
                    entries.append(try entry(profile, runtime: runtime, strategy: strategy))
                }
            }
        }
        if let writeBaseline {
            let data = try MemoryBaseline(toolVersion: SnnmemVersion.current, entries: entries).encoded()
            try reportingErrors { try AtomicOutput.write(data, to: writeBaseline) }
            FileHandle.standardError.write(Data("wrote \(entries.count) entries to \(writeBaseline)\n".utf8))
        }
        let check = BudgetCheck(entries: entries, budgetBytes: budgetBytes, baseline: old, tolerancePercent: tolerance)
        switch format {
        case .json: print(try Formatting.json(check))
        case .table: print(check.render(markdown: false))
        case .markdown: print(check.render(markdown: true))
        }
        if let summary = ProcessInfo.processInfo.environment["GITHUB_STEP_SUMMARY"], !summary.isEmpty {
            let text = check.render(markdown: true) + "\n\n"
            if let handle = FileHandle(forWritingAtPath: summary) {
                handle.seekToEndOfFile()
                handle.write(Data(text.utf8))
                handle.closeFile()
            } else {
                FileManager.default.createFile(atPath: summary, contents: Data(text.utf8))
            }
        }
        if !check.passed { throw CLIFailure(message: "", exitCode: 1) }
    }
}
