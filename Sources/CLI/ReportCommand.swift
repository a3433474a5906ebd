import Allocator
import ArgumentParser
import Foundation
import MemoryModel
import Planner
import Profiles
import Reports

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Turn saved traces (from run --trace or compare --out) into report.html, report.md, report.json and trace.json.")

    @Argument(help: "Measured trace files.")
    var traces: [String]

    @Option(help: "The profile the traces were measured on (default: profiles/NAME.yaml for the name in each trace).")
    var profile: String?

    @Option(help: "The folder to write (replaced whole).")
    var out: String

    @Option(help: "Which training step of each trace to draw (0 is the first, whose events include the parameters).")
    var step: Int = 0

    func validate() throws {
        if traces.isEmpty { throw ValidationError("name at least one trace file") }
        if step < 0 { throw ValidationError("--step must be 0 or more") }
    }

    func run() throws {
        var schedules: [(planned: Timeline, measured: Timeline?)] = []
        var names: [String] = []
        for path in traces {
            let trace = try reportingErrors { try TraceFile.read(from: path) }
            let header = trace.header
            guard let strategy = Strategy(rawValue: header.strategy) else {
                throw CLIFailure.badInput("\(path): unknown strategy '\(header.strategy)' in the trace header")
            }
            let profilePath = profile ?? "profiles/\(header.profile).yaml"
            guard FileManager.default.fileExists(atPath: profilePath) else {
                throw CLIFailure.badInput("\(path): the trace was measured on profile '\(header.profile)', and \(profilePath) does not exist; pass --profile FILE")
            }
            let loaded = try reportingErrors { try ProfileLoader.load(path: profilePath) }
            guard loaded.name == header.profile else {
                throw CLIFailure.badInput("\(path): the trace is of profile '\(header.profile)' but \(profilePath) is '\(loaded.name)'; pass the matching --profile")
            }
            guard trace.events.contains(where: { $0.trainingStep == step }) else {
                throw CLIFailure.badInput("\(path): the trace has no step \(step)")
            }
            let plan = try reportingErrors {
                try Planner.plan(loaded, strategy: strategy, options: .init(batch: header.batch, timesteps: header.timesteps))
            }
            schedules.append((Timeline(plan: plan), Timeline(trace: trace, step: step)))
            names.append(header.profile)
        }
        let title = Set(names).count == 1 ? "\(names[0]): measured traces against their plans" : "measured traces against their plans"
        let files = try ReportBundle.files(title: title, comparison: nil, schedules: schedules)
        try reportingErrors { try AtomicOutput.writeFolder(files, to: out) }
        print("wrote \(files.keys.sorted().joined(separator: ", ")) to \(out)")
    }
}
