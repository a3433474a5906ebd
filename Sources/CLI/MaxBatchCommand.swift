import ArgumentParser
import Reports
import MemoryModel
import Planner
import Profiles

struct MaxBatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "max-batch",
        abstract: "The largest batch whose planned peak fits in memory, per strategy.",
        discussion: "Exits 1 when no requested strategy fits even at batch 1, 2 on bad input.")

    @OptionGroup var options: ProfileOptions
    @OptionGroup var strategyOption: StrategyOption
    @OptionGroup var runtimeOption: RuntimeOption

    @Option(help: OutputFormat.help)
    var format: OutputFormat = .table

    @Option(help: "Memory available, e.g. 24GiB, 16GB, 8000MiB.")
    var memory: String

    @Option(help: "Memory to leave free (framework, allocator caches), e.g. 1GiB.")
    var reserve: String = "0B"

    @Option(help: "Round each tensor as an allocator would: exact, jemalloc or cuda (snnmem and pytorch-cpu; pytorch-cuda replays PyTorch's caching allocator itself).")
    var allocator: AllocatorRounding?

    @Option(name: .customLong("cuda-context"), help: "pytorch-cuda: memory outside the caching allocator (CUDA context, kernels); default 400MiB.")
    var cudaContext: String?

    @Option(name: .customLong("cublas-workspace"), help: "pytorch-cuda: cuBLAS workspace per handle; default 32MiB (Hopper; 8MiB before).")
    var cublasWorkspace: String?

    @Option(name: .customLong("cudnn-workspace"), help: "pytorch-cuda: allowance for cuDNN's convolution workspaces on top of the replayed peak; default 64MiB.")
    var cudnnWorkspace: String?

    @Flag(name: .customLong("expandable-segments"), help: "pytorch-cuda: replay PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True.")
    var expandableSegments = false

    /// `CUDAOverheads`' documented defaults, with what the options override.
    func cudaOverheads() throws -> CUDAOverheads {
        var o = CUDAOverheads()
        if let cudaContext { o.contextBytes = try parseSize(cudaContext, option: "--cuda-context") }
        if let cublasWorkspace { o.cublasWorkspaceBytes = try parseSize(cublasWorkspace, option: "--cublas-workspace") }
        if let cudnnWorkspace { o.cudnnWorkspaceBytes = try parseSize(cudnnWorkspace, option: "--cudnn-workspace") }
        o.allocator.expandableSegments = expandableSegments
        return o
    }

    func validate() throws {
        let memoryBytes = try parseSize(memory, option: "--memory")
        let reserveBytes = try parseSize(reserve, option: "--reserve")
        let isCUDA = runtimeOption.runtime == .pytorchCUDA
        if isCUDA, allocator != nil {
            throw ValidationError("--allocator rounds tensors for snnmem and pytorch-cpu; pytorch-cuda replays PyTorch's CUDA caching allocator itself: remove --allocator")
        }
        if !isCUDA, expandableSegments || cudaContext != nil || cublasWorkspace != nil || cudnnWorkspace != nil {
            throw ValidationError("--cuda-context, --cublas-workspace, --cudnn-workspace and --expandable-segments describe a GPU: add --runtime pytorch-cuda")
        }
        _ = try cudaOverheads()
        if reserveBytes >= memoryBytes {
            throw ValidationError("--reserve (\(ByteCount.format(reserveBytes))) leaves nothing of --memory (\(ByteCount.format(memoryBytes)))")
        }
    }

    func run() throws {
        let profile = try options.loadProfile()
        let memoryBytes = try parseSize(memory, option: "--memory")
        let budget = memoryBytes - (try parseSize(reserve, option: "--reserve"))
        let strategies = try strategyOption.strategies()
        let runtime = runtimeOption.runtime
        let rounding = allocator ?? .exact
        let plannerOptions = Planner.Options(timesteps: options.timesteps, segment: strategyOption.segment, rounding: rounding,
                                             runtime: runtime, dtype: options.dtype, cpuThreads: runtimeOption.plannedCPUThreads)
        let overheads = try cudaOverheads()
        let bytesNeeded: (MemoryPlan) -> Int = runtime == .pytorchCUDA
            ? { CUDAMemoryEstimate.estimate($0, profile: profile, overheads: overheads).totalBytes }
            : { $0.peakBytes }
        func estimate(_ strategy: Strategy, _ batch: Int) throws -> CUDAMemoryEstimate {
            var o = plannerOptions
            o.batch = batch
            return CUDAMemoryEstimate.estimate(try Planner.plan(profile, strategy: strategy, options: o), profile: profile, overheads: overheads)
        }
        var results: [MaxBatchResult] = []
        var skipped: [(Strategy, String)] = []
        try reportingErrors {
            for strategy in strategies {
                if let reason = strategy.notApplicableReason(profile) ?? runtimeOption.runtime.notModelledReason(strategy, profile) {
                    if !strategyOption.isAll { throw PlannerError.notApplicable(strategy: strategy, reason: reason) }
                    skipped.append((strategy, reason))
                    continue
                }
                results.append(try MaxBatch.find(profile, strategy: strategy, budgetBytes: budget, options: plannerOptions,
                                                 bytesNeeded: bytesNeeded))
            }
        }
        let cuda: [CUDAMemoryEstimate?] = try reportingErrors {
            try results.map { runtime == .pytorchCUDA && $0.maxBatch > 0 ? try estimate($0.strategy, $0.maxBatch) : nil }
        }
        let timesteps = options.timesteps ?? profile.timesteps
        switch format {
        case .json:
            let json = MaxBatchJSON(profile: profile.name, runtime: runtime.rawValue, timesteps: timesteps, memoryBytes: memoryBytes,
                                    reserveBytes: memoryBytes - budget, budgetBytes: budget,
                                    allocator: runtime == .pytorchCUDA ? "cuda-caching-allocator" : rounding.rawValue,
                                    strategies: zip(results, cuda).map { result, gpu in
                                        .init(strategy: result.strategy.rawValue, maxBatch: result.maxBatch, peakBytesAtMax: result.peakBytesAtMax,
                                              peakBytesAtMaxPlusOne: result.peakBytesAtMaxPlusOne,
                                              cuda: gpu.map(CUDAEstimateJSON.init))
                                    },
                                    notApplicable: skipped.map { .init(strategy: $0.0.rawValue, reason: $0.1) })
            print(try Formatting.json(json, kind: .maxBatch))
        case .table, .markdown:
            let markdown = format == .markdown
            var table: TextTable
            if runtime == .pytorchCUDA {
                table = TextTable(["strategy", "max batch", "allocated", "reserved", "ratio", "GPU total", "at max+1"])
                for (result, gpu) in zip(results, cuda) {
                    let (atMax, atMaxPlusOne) = Self.distinctPeaks(result, budgetBytes: budget)
                    table.add([result.strategy.rawValue, "\(result.maxBatch)", gpu.map { Formatting.bytes($0.peakAllocatedBytes) } ?? "-",
                               gpu.map { Formatting.bytes($0.peakReservedBytes) } ?? "-",
                               gpu.map { ByteCount.formatFixed($0.reservedOverAllocated, digits: 2) + "x" } ?? "-",
                               atMax, atMaxPlusOne])
                }
            } else {
                table = TextTable(["strategy", "max batch", "peak at max", "peak at max+1"])
                for result in results {
                    let (atMax, atMaxPlusOne) = Self.distinctPeaks(result, budgetBytes: budget)
                    table.add([result.strategy.rawValue, "\(result.maxBatch)", atMax, atMaxPlusOne])
                }
            }
            let counted = runtime == .pytorchCUDA
                ? Formatting.wrap("GPU total = reserved (PyTorch's caching allocator replayed, cuBLAS workspaces inside) + cuDNN allowance \(Formatting.bytes(overheads.cudnnWorkspaceBytes)) + CUDA context \(Formatting.bytes(overheads.contextBytes)); ratio = reserved / allocated")
                : "\(rounding.rawValue) bytes"
            var text = (markdown ? "## " : "") +
                "\(profile.name): T \(timesteps), budget \(Formatting.bytes(budget)) (\(Formatting.bytes(memoryBytes)) less \(Formatting.bytes(memoryBytes - budget)) reserve), runtime \(runtime.rawValue)\n" +
                counted + "\n\n"
            text += markdown ? table.markdown() : table.text()
            let deciding = zip(results, cuda).compactMap { result, gpu in gpu.map { "  \(result.strategy.rawValue): decided by \($0.decidingTerm)" } }
            if !deciding.isEmpty { text += "\n\n" + deciding.joined(separator: "\n") }
            if !skipped.isEmpty {
                text += "\n\nNot applicable to this profile:\n" + skipped.map { Formatting.wrap((markdown ? "- " : "  ") + "\($0.0.rawValue): \($0.1)") }.joined(separator: "\n")
            }
            print(text)
        }
        // Nothing the user asked for fits: a script that goes on to train would run out of memory.
        let fitting = results.filter { $0.maxBatch > 0 }
        if fitting.isEmpty, !results.isEmpty {
            let needs = results.map { "\($0.strategy.rawValue) needs \(Formatting.bytes($0.peakBytesAtMaxPlusOne)) at batch 1" }
            throw CLIFailure(message: "error: nothing fits in \(Formatting.bytes(budget)): " + needs.joined(separator: ", ")
                             + "; give more --memory, fewer --timesteps, or another strategy", exitCode: 1)
        }
    }

    /// The peaks at the largest batch and the next, each with as many digits as it takes to tell
    /// both apart from each other and from the budget (at max <= budget < at max+1).
    static func distinctPeaks(_ result: MaxBatchResult, budgetBytes: Int) -> (atMax: String, atMaxPlusOne: String) {
        let texts = ByteCount.formatDistinct([result.peakBytesAtMax ?? 0, result.peakBytesAtMaxPlusOne, budgetBytes])
        return (result.peakBytesAtMax == nil ? "does not fit" : texts[0], texts[1])
    }
}

struct MaxBatchJSON: Codable {
    struct Entry: Codable {
        var strategy: String
        var maxBatch: Int
        /// What must fit at the largest batch: the planned peak, or the GPU total on pytorch-cuda.
        var peakBytesAtMax: Int?
        var peakBytesAtMaxPlusOne: Int
        var cuda: CUDAEstimateJSON?
    }
    struct NotApplicable: Codable {
        var strategy: String
        var reason: String
    }
    var profile: String
    var runtime: String
    var timesteps: Int
    var memoryBytes: Int
    var reserveBytes: Int
    var budgetBytes: Int
    var allocator: String
    var strategies: [Entry]
    var notApplicable: [NotApplicable]
}
