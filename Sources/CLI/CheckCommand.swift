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
        abstract: "Fail (exit 1) when a peak exceeds the budget, grows past its baseline or no longer matches it: a CI gate.",
        discussion: """
            Baseline entries are keyed by profile file (the path as named), runtime and strategy, \
            and carry the file's SHA-256 and the batch and T it was planned at. Each entry gets one \
            verdict: ok; grew (past the tolerance: fails); improved \
            (shrank past the tolerance); changed (the file's content, batch, T or --measure differ \
            from the baseline's, so the figures are not comparable: fails until the baseline is \
            written again); new (no baseline entry: reported, fails with --fail-on-new); stale (a \
            baseline entry nothing matches now, e.g. a removed or renamed profile file: fails). A \
            renamed profile shows as new plus stale. Baseline entries of runtimes or strategies not \
            selected, or of profile files that exist but were not named, are not checked. Paths are \
            relative to the working directory: check from the folder the baseline was written in.

            Exit codes: 0 nothing failed or improved; 1 a failure (over budget, grew, changed, stale, \
            or new with --fail-on-new); 2 bad input (a profile, option or baseline file); 4 nothing \
            failed but an entry improved past the tolerance: write the baseline again.
            """)

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

    @Option(help: "Allowed change from the baseline's peak, in percent of it. An entry is within tolerance when within this OR --tolerance-bytes.")
    var tolerance: Double = 0

    @Option(name: .customLong("tolerance-bytes"),
            help: ArgumentHelp("Allowed change from the baseline's peak in bytes, e.g. 1MiB. An entry is within tolerance when within this OR --tolerance.", valueName: "size"))
    var toleranceBytes: String = "0"

    @Flag(name: .customLong("fail-on-new"), help: "Fail (exit 1) on entries the baseline does not have (default: report them).")
    var failOnNew = false

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
        _ = try parseSize(toleranceBytes, option: "--tolerance-bytes")
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

    func options(_ runtime: Runtime) -> Planner.Options {
        .init(batch: batch, rounding: runtime == .pytorchCUDA ? .cuda : .exact, runtime: runtime)
    }

    /// The entries of one profile on one runtime, one per strategy, in order. The peaks alone: an
    /// entry never lists the tensors, and the strategies' walks share the layers' tables.
    func plannedEntries(_ profile: Profile, file: String, runtime: Runtime, strategies: [Strategy]) throws -> [MemoryBaseline.Entry] {
        let peaks = try reportingErrors { try Planner.peaks(profile, strategies: strategies, options: options(runtime)) }
        return zip(strategies, peaks).map { strategy, plan in
            MemoryBaseline.Entry(profileFile: file, profileSHA256: profile.sourceSHA256, profile: profile.name, runtime: runtime.rawValue,
                                 strategy: strategy.rawValue, batch: plan.batch, timesteps: plan.timesteps, peakBytes: plan.peakBytes,
                                 bytesByRoleAtPeak: plan.bytesByRoleAtPeak, measured: false)
        }
    }

    /// One entry measured by a training step of snnmem's engine (`--measure`).
    func measuredEntry(_ profile: Profile, file: String, runtime: Runtime, strategy: Strategy) throws -> MemoryBaseline.Entry {
        let plan = try reportingErrors { try Planner.peak(profile, strategy: strategy, options: options(runtime)) }
        var peak = plan.peakBytes
        var roles = plan.bytesByRoleAtPeak
        let result = try reportingErrors { try MemoryRun.measure(profile: profile, strategy: strategy, batch: batch, steps: 1) }
        peak = result.measuredPeakBytes
        let events = result.trace.events.filter { $0.trainingStep == 0 }.lifetimeEvents(measuring: .requested)
        roles = PeakSweep().run(events, allowLive: Set(events.map(\.tensorID))).bytesByRoleAtPeak
        return MemoryBaseline.Entry(profileFile: file, profileSHA256: profile.sourceSHA256, profile: profile.name, runtime: runtime.rawValue,
                                    strategy: strategy.rawValue, batch: plan.batch, timesteps: plan.timesteps, peakBytes: peak,
                                    bytesByRoleAtPeak: roles, measured: true)
    }

    func run() throws {
        if let writeBaseline { try reportingErrors { try AtomicOutput.checkFileTarget(writeBaseline) } }
        let budgetBytes = try parseSize(budget, option: "--budget")
        // The baseline is read while the profiles load (below); a bad baseline is still the error
        // reported first.
        let baselinePath = baseline
        let reading = BackgroundWork { try baselinePath.map { try MemoryBaseline.read(path: $0) } }
        let currentDirectory = FileManager.default.currentDirectoryPath
        // What to check is gathered first, so that a measured check can show its progress out of
        // the whole before the first (slow) training step.
        var jobs: [(profile: Profile, file: String, runtime: Runtime, strategy: Strategy)] = []
        var named = Set<String>()
        // One key per file however it is spelled; a file named twice is checked once.
        var paths: [(path: String, file: String)] = []
        for path in profiles {
            let file = MemoryBaseline.fileKey(path, currentDirectory: currentDirectory)
            if named.insert(file).inserted { paths.append((path, file)) }
        }
        // The files are read and their shapes inferred side by side; a bad one is reported as it
        // would be one at a time: the first in the order named.
        let loaded = try paths.concurrentMap { entry in Swift.Result { try ProfileLoader.load(path: entry.path) } }
        let old = try reportingErrors { try reading.value() }
        for ((path, file), result) in zip(paths, loaded) {
            let profile = try reportingErrors { try result.get() }
            for runtime in try runtimes() {
                let strategies: [Strategy]
                if strategy == "all" {
                    // The runtime's reasons are the profile's, whatever the strategy: asked once.
                    strategies = runtime.notModelledReason(profile) != nil ? []
                        : Strategy.allCases.filter { $0.notApplicableReason(profile) == nil }
                } else {
                    let one = Strategy(rawValue: strategy)!
                    if let reason = one.notApplicableReason(profile) ?? runtime.notModelledReason(one, profile) {
                        throw CLIFailure.badInput("\(path): strategy \(one.rawValue) does not apply: \(reason)")
                    }
                    strategies = [one]
                }
                for strategy in strategies { jobs.append((profile, file, runtime, strategy)) }
            }
        }
        let progress = ProgressBar(total: measure ? jobs.count : 0, label: "check --measure")
        if let first = jobs.first { progress.begin("\(first.profile.name) \(first.strategy.rawValue)") }
        var entries: [MemoryBaseline.Entry] = []
        if measure {
            // Training steps one at a time: each measures its own allocations.
            for (done, job) in jobs.enumerated() {
                entries.append(try measuredEntry(job.profile, file: job.file, runtime: job.runtime, strategy: job.strategy))
                // The detail names what runs next: that is what the wait is for.
                let next = done + 1 < jobs.count ? jobs[done + 1] : job
                progress.update(done + 1, detail: "\(next.profile.name) \(next.strategy.rawValue)")
            }
        } else {
            // A profile's strategies on one runtime are planned together (they share the layers'
            // tables); those groups are independent, planned side by side on the machine's
            // processors, and their entries kept in job order.
            var groups: [(profile: Profile, file: String, runtime: Runtime, strategies: [Strategy])] = []
            for job in jobs {
                if let last = groups.last, last.file == job.file, last.runtime == job.runtime {
                    groups[groups.count - 1].strategies.append(job.strategy)
                } else {
                    groups.append((job.profile, job.file, job.runtime, [job.strategy]))
                }
            }
            entries = try groups.concurrentMap { group in
                try plannedEntries(group.profile, file: group.file, runtime: group.runtime, strategies: group.strategies)
            }.flatMap { $0 }
        }
        progress.finish()
        if let writeBaseline {
            let data = try MemoryBaseline(toolVersion: SnnmemVersion.current, entries: entries).encoded()
            try reportingErrors { try AtomicOutput.write(data, to: writeBaseline) }
            FileHandle.standardError.write(Data("wrote \(entries.count) entries to \(writeBaseline)\n".utf8))
        }
        // An unmatched baseline entry is stale unless this run did not set out to check it: another
        // runtime or strategy, or a file that still exists but was not named (checking one profile
        // against the whole baseline). A file that is gone was removed or renamed: stale.
        let selectedRuntimes = Set(try runtimes().map(\.rawValue))
        let notChecked = { (entry: MemoryBaseline.Entry) -> Bool in
            !selectedRuntimes.contains(entry.runtime) || (strategy != "all" && entry.strategy != strategy)
                || (!named.contains(entry.profileFile) && FileManager.default.fileExists(atPath: entry.profileFile))
        }
        let check = BudgetCheck(entries: entries, budgetBytes: budgetBytes, baseline: old, tolerancePercent: tolerance,
                                toleranceBytes: try parseSize(toleranceBytes, option: "--tolerance-bytes"), failOnNew: failOnNew,
                                notChecked: notChecked)
        switch format {
        case .json: print(try Formatting.json(check, kind: .check))
        case .table: print(check.render(markdown: false))
        case .markdown: print(check.render(markdown: true))
        }
        if let summary = ProcessInfo.processInfo.environment["GITHUB_STEP_SUMMARY"], !summary.isEmpty {
            let text = check.render(markdown: true) + "\n\n"
            if let handle = FileHandle(forWritingAtPath: summary) {
                handle.seekToEndOfFile()
                handle.write(Data(text.utf8))
                handle.closeFile()
            } else if !FileManager.default.createFile(atPath: summary, contents: Data(text.utf8)) {
                // The gate's verdict stands without its summary; say that the summary is missing.
                FileHandle.standardError.write(Data("warning: could not write the step summary to \(summary)\n".utf8))
            }
        }
        switch check.outcome {
        case .passed: break
        case .failed: throw CLIFailure(message: "", exitCode: 1)
        // As package-benchmark: a distinct code, so CI can tell "update the baseline" from a failure.
        case .improved: throw CLIFailure(message: "", exitCode: 4)
        }
    }
}
