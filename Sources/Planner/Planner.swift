import MemoryModel
import Profiles

/// Plans one training step of a profile under a strategy: no training, only the tensors.
public enum Planner {
    public struct Options: Sendable {
        public var batch: Int?
        public var timesteps: Int?
        /// Checkpoint segment length; nil means round(sqrt(T)).
        public var segment: Int?
        public var rounding: AllocatorRounding
        /// Whose allocations to plan: snnmem's engine (the library default, which the engine's
        /// tests hold to the byte) or PyTorch + SpikingJelly on CUDA or the CPU.
        public var runtime: Runtime
        /// The profile's dtype, overridden. On the PyTorch runtimes float16 and bfloat16 mean mixed
        /// precision: a float32 model under `torch.autocast`.
        public var dtype: DType?
        /// pytorch-cpu: PyTorch's threads (`torch.get_num_threads()`), which size oneDNN's
        /// bfloat16 weight-gradient scratchpads; nil: the 2 threads the fixtures were measured with.
        public var cpuThreads: Int?

        public init(batch: Int? = nil, timesteps: Int? = nil, segment: Int? = nil, rounding: AllocatorRounding = .exact,
                    runtime: Runtime = .snnmem, dtype: DType? = nil, cpuThreads: Int? = nil) {
            self.batch = batch
            self.timesteps = timesteps
            self.segment = segment
            self.rounding = rounding
            self.runtime = runtime
            self.dtype = dtype
            self.cpuThreads = cpuThreads
        }
    }

    public static func plan(_ profile: Profile, strategy: Strategy, options: Options = Options()) throws -> MemoryPlan {
        var tables: SharedTables?
        let walk = try self.walk(profile, strategy: strategy, options: options, describingTensors: true, sharing: &tables)
        let builder = walk.builder
        return MemoryPlan(profileName: builder.profile.name, strategy: strategy, runtime: options.runtime, batch: walk.batch,
                          timesteps: walk.timesteps, segment: walk.segment, rounding: options.rounding, tensors: builder.tensors,
                          events: builder.events, sweep: walk.sweep, forwardFlops: builder.forwardFlops,
                          recomputeFlops: builder.recomputeFlops, backwardFlops: builder.backwardFlops)
    }

    /// The peak of the step `plan` would describe, from the same walk without describing each
    /// tensor (its layer, name and shape): what `check` needs, at a fraction of the cost. The
    /// sweep is the one `plan(...).sweep` gives, byte for byte (`PlannedPeakTests`).
    public static func peak(_ profile: Profile, strategy: Strategy, options: Options = Options()) throws -> PlannedPeak {
        try peaks(profile, strategies: [strategy], options: options)[0]
    }

    /// `peak` under each strategy, in order, the walks sharing what does not depend on the
    /// strategy: each layer's table entries and the parameter list. Throws what the first
    /// strategy that fails throws.
    public static func peaks(_ profile: Profile, strategies: [Strategy], options: Options = Options()) throws -> [PlannedPeak] {
        var tables: SharedTables?
        return try strategies.map { strategy in
            let walk = try self.walk(profile, strategy: strategy, options: options, describingTensors: false, sharing: &tables)
            return PlannedPeak(batch: walk.batch, timesteps: walk.timesteps, segment: walk.segment, sweep: walk.sweep)
        }
    }

    /// What walks of one profile under the same options share.
    struct SharedTables {
        var layerTables: LayerTableCache
        var parameterEntries: [ParameterLayout.Entry]
        /// The most events and tensors a walk made so far: the next one reserves room for them.
        var eventCount: Int
        var tensorCount: Int
        var savedKeyCount: Int
    }

    /// Checks the options, walks the step under the strategy and sweeps its events. `tables`
    /// starts the walk from a previous walk's tables (made under the same options) and hands
    /// this walk's on.
    private static func walk(_ profile: Profile, strategy: Strategy, options: Options, describingTensors: Bool,
                             sharing tables: inout SharedTables?) throws
        -> (builder: TraceBuilder, batch: Int, timesteps: Int, segment: Int?, sweep: PeakSweep.Result) {
        var profile = profile
        if let dtype = options.dtype {
            guard dtype.holdsActivations else {
                throw PlannerError.invalidArgument(name: "dtype", value: dtype.rawValue, fix: "use float32, float16 or bfloat16")
            }
            profile.dtype = dtype
        }
        if let reason = strategy.notApplicableReason(profile) ?? options.runtime.notModelledReason(strategy, profile) {
            throw PlannerError.notApplicable(strategy: strategy, reason: reason)
        }
        let batch = options.batch ?? profile.batch
        let timesteps = options.timesteps ?? profile.timesteps
        guard batch >= 1 else {
            throw PlannerError.invalidArgument(name: "batch", value: "\(batch)", fix: "use a batch of at least 1")
        }
        guard timesteps >= 1 else {
            throw PlannerError.invalidArgument(name: "timesteps", value: "\(timesteps)", fix: "use at least 1 timestep")
        }
        if let problem = profile.sizeProblem(batch: batch, timesteps: timesteps) {
            throw PlannerError.tooLarge(profile: profile.sourcePath, problem: problem)
        }
        var segment: Int?
        if strategy == .checkpoint {
            let k = options.segment ?? Strategy.defaultSegment(timesteps: timesteps)
            guard k >= 1, k <= timesteps else {
                throw PlannerError.invalidArgument(name: "segment", value: "\(k)", fix: "use a segment between 1 and T = \(timesteps)")
            }
            segment = k
        }
        if let reason = options.runtime.oneSampleReason(profile, strategy: strategy, batch: batch, timesteps: timesteps, segment: segment) {
            throw PlannerError.notApplicable(strategy: strategy, reason: reason)
        }
        if let threads = options.cpuThreads, !(1...StepBounds.maxCPUThreads).contains(threads) {
            throw PlannerError.invalidArgument(name: "cpu-threads", value: "\(threads)", fix: "use 1 to \(StepBounds.maxCPUThreads) threads")
        }
        var builder = TraceBuilder(profile: profile, batch: batch, timesteps: timesteps, runtime: options.runtime,
                                   describesTensors: describingTensors, layerTables: tables?.layerTables)
        if let threads = options.cpuThreads { builder.oneDNNMachine.threads = threads }
        if let tables {
            builder.parameterEntries = tables.parameterEntries
            builder.reserveCapacity(events: tables.eventCount, tensors: tables.tensorCount, savedKeys: tables.savedKeyCount)
        }
        let isTRev = profile.trevsnnNetwork != nil
        switch strategy {
        case .bptt: isTRev ? builder.runTRev(reconstruct: false) : builder.runBPTT()
        case .checkpoint: builder.runCheckpoint(segment: segment!)
        case .sltt: builder.runSLTT()
        case .revsnn: builder.runRevSNN()
        case .trevsnn: builder.runTRev(reconstruct: true)
        }
        let sweep = PeakSweep(rounding: options.rounding).run(builder.events, allowLive: builder.persistentIDs)
        precondition(sweep.problems.isEmpty, "planned trace is inconsistent: \(sweep.problems)")
        tables = SharedTables(layerTables: builder.layerTables, parameterEntries: builder.parameterEntries,
                              eventCount: max(tables?.eventCount ?? 0, builder.events.count),
                              tensorCount: max(tables?.tensorCount ?? 0, builder.tensorCount),
                              savedKeyCount: max(tables?.savedKeyCount ?? 0, builder.savedKeysHighWater))
        return (builder, batch, timesteps, segment, sweep)
    }

    /// Every strategy: the plans of those that apply and the reasons for the others.
    public static func planAll(_ profile: Profile, strategies: [Strategy] = Strategy.allCases,
                               options: Options = Options()) throws -> (plans: [MemoryPlan], notApplicable: [(Strategy, String)]) {
        var plans: [MemoryPlan] = []
        var skipped: [(Strategy, String)] = []
        for strategy in strategies {
            if let reason = strategy.notApplicableReason(profile) ?? options.runtime.notModelledReason(strategy, profile) {
                skipped.append((strategy, reason))
            } else {
                plans.append(try plan(profile, strategy: strategy, options: options))
            }
        }
        return (plans, skipped)
    }
}
