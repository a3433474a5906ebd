import ArgumentParser
import Foundation
import Engine
import MemoryModel
import Planner
import Profiles

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, markdown

    /// The `--format` help; the parser lists the values each command's format type accepts.
    static let help = ArgumentHelp("Output format.")
}

/// `run` and `train` print a step or epoch log, which has no Markdown form: their `--format`
/// offers only what they print.
enum LogFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json

    static let help = OutputFormat.help
}

/// Options shared by commands that take a profile. The batch is its own group, since `max-batch`
/// searches it and must not offer it.
struct ProfileOptions: ParsableArguments {
    @Argument(help: "A profile YAML file (see profiles/).")
    var profile: String

    @Option(help: "Timesteps T (default: the profile's).")
    var timesteps: Int?

    @Option(help: ArgumentHelp("Element type of activations (default: the profile's). On the PyTorch runtimes float16/bfloat16 mean mixed precision (torch.autocast over a float32 model).", valueName: "dtype"))
    var dtype: DType?

    func validate() throws {
        if let dtype, !dtype.holdsActivations { throw ValidationError("--dtype \(dtype.rawValue) cannot hold activations: use float32, float16 or bfloat16") }
        if let timesteps, timesteps < 1 { throw ValidationError("--timesteps must be at least 1, got \(timesteps)") }
        try checkPlannable(batch: nil, timesteps: timesteps)
    }

    func loadProfile() throws -> Profile {
        try reportingErrors { try ProfileLoader.load(path: profile) }
    }
}

/// `--batch`, for the commands that take a batch instead of searching for one.
struct BatchOption: ParsableArguments {
    @Option(help: "Batch size (default: the profile's).")
    var batch: Int?

    func validate() throws {
        if let batch, batch < 1 { throw ValidationError("--batch must be at least 1, got \(batch)") }
        try checkPlannable(batch: batch, timesteps: nil)
    }
}

/// `--strategy S|all`, parsed into strategies.
struct StrategyOption: ParsableArguments {
    @Option(help: "A strategy (bptt, checkpoint, sltt, revsnn, trevsnn) or all.")
    var strategy: String = "all"

    @Option(help: "Checkpoint segment length k (checkpoint only; default round(sqrt(T))).")
    var segment: Int?

    func validate() throws {
        _ = try strategies()
        if let segment, segment < 1 { throw ValidationError("--segment must be at least 1, got \(segment)") }
        if segment != nil, !(try strategies()).contains(.checkpoint) {
            throw ValidationError("--segment applies to the checkpoint strategy only; add --strategy checkpoint or all")
        }
    }

    func strategies() throws -> [Strategy] {
        if strategy.lowercased() == "all" { return Strategy.allCases }
        guard let one = Strategy(rawValue: strategy.lowercased()) else {
            throw ValidationError("unknown strategy '\(strategy)': use one of \(Strategy.allCases.map(\.rawValue).joined(separator: ", ")) or all")
        }
        return [one]
    }

    var isAll: Bool { strategy.lowercased() == "all" }
}

extension AllocatorRounding: ExpressibleByArgument {}

extension Runtime: ExpressibleByArgument {}

extension DType: ExpressibleByArgument {
    /// Only the types that can hold activations are offered: the help must not list int32 and
    /// then refuse it.
    public static var allValueStrings: [String] { allCases.filter(\.holdsActivations).map(\.rawValue) }
}

/// `--runtime`: whose training step to plan. Users train in PyTorch on GPUs, so that is the default.
struct RuntimeOption: ParsableArguments {
    @Option(help: ArgumentHelp("Whose training step to plan: pytorch-cuda (PyTorch + SpikingJelly on a GPU), pytorch-cpu, or snnmem (this tool's engine, what `run` measures).",
                               valueName: "runtime"))
    var runtime: Runtime = Runtime.userDefault

    @Option(name: .customLong("cpu-threads"),
            help: ArgumentHelp("pytorch-cpu: PyTorch's threads (torch.get_num_threads()), which size oneDNN's bfloat16 weight-gradient scratchpads; default: this machine's processors.",
                               valueName: "n"))
    var cpuThreads: Int?

    func validate() throws {
        if let cpuThreads {
            guard runtime == .pytorchCPU else { throw ValidationError("--cpu-threads describes PyTorch on the CPU: add --runtime pytorch-cpu") }
            guard (1...StepBounds.maxCPUThreads).contains(cpuThreads) else {
                throw ValidationError("--cpu-threads is \(cpuThreads): give 1 to \(StepBounds.maxCPUThreads)")
            }
        }
    }

    /// The threads a pytorch-cpu plan is made for: as given, else this machine's processors
    /// (PyTorch's default is the physical cores); nil for the other runtimes.
    var plannedCPUThreads: Int? {
        guard runtime == .pytorchCPU else { return nil }
        return cpuThreads ?? min(StepBounds.maxCPUThreads, ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// The bounds every profile value has (`PlanningLimits`), for the options that override them.
/// Whether batch and T fit the profile's shapes together is the planner's check, after loading.
func checkPlannable(batch: Int?, timesteps: Int?) throws {
    if let batch, batch > PlanningLimits.maxBatch {
        throw ValidationError("--batch \(batch) is more than the \(PlanningLimits.formatted(PlanningLimits.maxBatch)) samples snnmem plans")
    }
    if let timesteps, timesteps > PlanningLimits.maxTimesteps {
        throw ValidationError("--timesteps \(timesteps) is more than the \(PlanningLimits.formatted(PlanningLimits.maxTimesteps)) timesteps snnmem plans")
    }
}

/// Every step of a run records at least one event, so no run can take more steps than the
/// events it may record; the bound for the profile at hand is checked once it is planned.
func checkStepCount(_ steps: Int) throws {
    if steps > MemoryRun.maxRecordedEvents {
        throw ValidationError("--steps \(steps): a run records every allocation of every step for its trace, at most \(MemoryRun.maxRecordedEvents) in all; use --steps \(MemoryRun.maxRecordedEvents) or less")
    }
}

func parseSize(_ text: String, option: String) throws -> Int {
    do { return try ByteCount.parse(text) } catch {
        throw ValidationError("\(option): \(error)")
    }
}
