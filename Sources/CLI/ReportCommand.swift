import OutputFiles
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
        abstract: "Turn saved traces (from run --trace or compare --out) or PyTorch measurements (snnmem-torch measure) into report.html, report.md, report.json and trace.json.")

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
        try reportingErrors { try AtomicOutput.checkFolderTarget(out) }
        var pytorchLines: [String] = []
        var schedules: [(planned: Timeline, measured: Timeline?)] = []
        var names: [String] = []
        for path in traces {
            if let data = FileManager.default.contents(atPath: path), PyTorchMeasurement.isMeasurement(data) {
                let (planned, measured, name) = try pytorchSchedule(path, lines: &pytorchLines)
                schedules.append((planned, measured))
                names.append(name)
                continue
            }
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
            // Refused, not warned: the report draws this file's plan against the measurement, and a
            // plan of another network (an edited batch, layer or neuron) would read as the trace's.
            guard loaded.sourceSHA256 == header.profileSHA256 else {
                throw CLIFailure.badInput("\(path): the trace was measured on a profile file with sha256 \(header.profileSHA256), but \(profilePath) has sha256 \(loaded.sourceSHA256) (it was edited since, or is another file); pass the profile file the trace was measured on with --profile, or measure again with `snnmem run \(profilePath) --strategy \(header.strategy) --batch \(header.batch) --timesteps \(header.timesteps) --trace FILE`")
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
        for line in pytorchLines { print(line) }
        let title = Set(names).count == 1 ? "\(names[0]): measured traces against their plans" : "measured traces against their plans"
        let files = try ReportBundle.files(title: title, comparison: nil, schedules: schedules)
        try reportingErrors { try AtomicOutput.writeFolder(files, to: out) }
        print("wrote \(files.keys.sorted().joined(separator: ", ")) to \(out)")
    }

    /// A PyTorch measurement (`snnmem-torch measure`) against the plan of its runtime: saved bytes
    /// per layer and the step peak, printed, and both streams for the timelines.
    func pytorchSchedule(_ path: String, lines pytorchLines: inout [String]) throws -> (Timeline, Timeline?, String) {
        let m = try reportingErrors { try PyTorchMeasurement.read(path: path) }
        guard let runtime = Runtime(rawValue: m.runtime), runtime.isPyTorch else {
            throw CLIFailure.badInput("\(path): unknown runtime '\(m.runtime)'; a measurement is of pytorch-cpu or pytorch-cuda")
        }
        guard let strategy = Strategy(rawValue: m.strategy) else {
            throw CLIFailure.badInput("\(path): unknown strategy '\(m.strategy)'")
        }
        let profilePath = profile ?? m.profileFile
        guard FileManager.default.fileExists(atPath: profilePath) else {
            throw CLIFailure.badInput("\(path): measured on \(m.profileFile), which does not exist here; pass --profile FILE")
        }
        let loaded = try reportingErrors { try ProfileLoader.load(path: profilePath) }
        guard loaded.name == m.profile else {
            throw CLIFailure.badInput("\(path): the measurement is of profile '\(m.profile)' but \(profilePath) is '\(loaded.name)'; pass the matching --profile")
        }
        if let measured = m.profileSHA256, measured != loaded.sourceSHA256 {
            throw CLIFailure.badInput("\(path): measured on a profile file with sha256 \(measured), but \(profilePath) has sha256 \(loaded.sourceSHA256) (edited since, or another file); pass the profile file it was measured on with --profile, or measure again")
        }
        guard let dtype = DType(rawValue: m.dtype ?? "float32"), dtype.holdsActivations else {
            throw CLIFailure.badInput("\(path): unknown dtype '\(m.dtype ?? "")'; a measurement is of float32, float16 or bfloat16")
        }
        // Planned as measured: the same autocast type and, on the CPU, the same threads.
        let plan = try reportingErrors {
            try Planner.plan(loaded, strategy: strategy, options: .init(batch: m.batch, timesteps: m.timesteps, segment: m.segment,
                                                                          runtime: runtime, dtype: dtype,
                                                                          cpuThreads: runtime == .pytorchCPU ? m.threads : nil))
        }
        let planned = Dictionary(uniqueKeysWithValues: plan.savedBytesSeenByHooks(timestep: m.savedTimestep).map { ($0.layer, $0.bytes) })
        let measured = Dictionary(m.savedByLayer.map { ($0.layer, $0.bytes) }, uniquingKeysWith: +)
        var table = TextTable(["layer", "saved (plan)", "saved (PyTorch)", "difference"], alignments: [.left, .right, .right, .right])
        var order = m.savedByLayer.map(\.layer)
        order += planned.keys.filter { measured[$0] == nil }.sorted()
        var differing = 0
        for layer in order where (planned[layer] ?? 0) != 0 || (measured[layer] ?? 0) != 0 {
            let difference = (planned[layer] ?? 0) - (measured[layer] ?? 0)
            if difference != 0 { differing += 1 }
            table.add([layer, Formatting.bytes(planned[layer] ?? 0), Formatting.bytes(measured[layer] ?? 0),
                       difference == 0 ? "0" : Formatting.bytes(difference)])
        }
        let error = Double(plan.peakBytes - m.stepPeakBytes) / Double(max(m.stepPeakBytes, 1)) * 100
        pytorchLines += ["\(m.profile) \(strategy.rawValue), batch \(m.batch), T \(m.timesteps): plan (\(runtime.rawValue)) against PyTorch \(m.torch ?? "?") + SpikingJelly \(m.spikingjelly ?? "?") (\(path))",
                         table.text(),
                         "\(differing) of \(order.count) layers differ; step peak planned \(Formatting.bytes(plan.peakBytes)), measured \(Formatting.bytes(m.stepPeakBytes)) (\(ByteCount.formatFixed(error, digits: 2))%)", ""]
        return (Timeline(plan: plan, title: "\(m.profile) \(strategy.rawValue) (\(runtime.rawValue), planned)"), m.timeline(), m.profile)
    }
}
