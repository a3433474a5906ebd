import MemoryModel
import Planner
import Profiles

/// The JSON shape of `snnmem plan --format json`.
struct PlanJSON: Codable {
    struct SavedTensor: Codable {
        var layer: String
        /// The layer that keeps it for backward (differs from `layer` for a kept input).
        var keptBy: String?
        /// When it was allocated (forward, or a recomputation in backward).
        var phase: String
        var name: String
        var timestep: Int?
        var role: String
        var shape: [Int]
        var bytes: Int
    }

    /// One allocation (+bytes) or free (-bytes) of the planned step, in order.
    struct Event: Codable {
        var bytes: Int
        var layer: String
        var name: String
        var timestep: Int?
        var phase: String
    }

    struct StrategyPlan: Codable {
        var strategy: String
        var cuda: CUDAEstimateJSON?
        var events: [Event]?
        var peakBytes: Int
        var peakPhase: String?
        var peakTensor: String?
        var segment: Int?
        var bytesByRoleAtPeak: [String: Int]
        /// The most bytes saved for backward live at one moment (README "Quantities").
        var heldForBackwardBytes: Int
        var persistentBytes: Int
        /// Every tensor saved for backward over the step, summed whether live together or not.
        var savedTensorBytes: Int
        var savedByLayer: [LayerBytes]
        var savedTensors: [SavedTensor]
        var forwardFlops: Double
        var recomputeFlops: Double
        var backwardFlops: Double
    }

    struct LayerBytes: Codable {
        var layer: String
        var bytes: Int
    }

    struct NotApplicable: Codable {
        var strategy: String
        var reason: String
    }

    struct LayerInfo: Codable {
        var layer: String
        var kind: String
        var inputShape: [Int]
        var outputShape: [Int]
        var parameters: Int
    }

    var profile: String
    var profilePath: String
    var runtime: String
    /// pytorch-cpu: the threads oneDNN's scratchpads were sized for (`--cpu-threads`).
    var cpuThreads: Int?
    var batch: Int
    var timesteps: Int
    var dtype: String
    var allocator: String
    var strategies: [StrategyPlan]
    var notApplicable: [NotApplicable]
    var layers: [LayerInfo]?

    init(profile: Profile, runtime: Runtime, cpuThreads: Int?, batch: Int, timesteps: Int, rounding: AllocatorRounding, plans: [MemoryPlan],
         notApplicable: [(Strategy, String)], layers: [LayerRow]?, events: Bool = false) {
        self.profile = profile.name
        self.profilePath = profile.sourcePath
        self.runtime = runtime.rawValue
        self.cpuThreads = cpuThreads
        self.batch = batch
        self.timesteps = timesteps
        self.dtype = profile.dtype.rawValue
        self.allocator = rounding.rawValue
        self.strategies = plans.map { plan in
            let saved = plan.savedTensors
            let phases = plan.allocationPhases
            let stream = events ? plan.events.map { event -> Event in
                let d = plan.tensors[event.tensorID].descriptor
                let bytes = rounding.roundedBytes(event.bytes)
                return Event(bytes: event.kind == .allocate ? bytes : -bytes, layer: d.layerPath, name: d.name, timestep: d.timestep,
                             phase: event.phase.description)
            } : nil
            let gpu = runtime == .pytorchCUDA ? CUDAMemoryEstimate.estimate(plan, profile: profile) : nil
            return StrategyPlan(
                strategy: plan.strategy.rawValue,
                cuda: gpu.map(CUDAEstimateJSON.init),
                events: stream, peakBytes: plan.peakBytes, peakPhase: plan.sweep.peakPhase?.description,
                peakTensor: plan.peakTensor?.descriptor.label, segment: plan.segment,
                bytesByRoleAtPeak: plan.bytesByRoleAtPeak.byReportKey, heldForBackwardBytes: plan.activationBytes,
                persistentBytes: plan.persistentBytes,
                savedTensorBytes: saved.reduce(0) { $0 + rounding.roundedBytes($1.bytes) },
                savedByLayer: plan.savedBytesByLayer.map { LayerBytes(layer: $0.layer, bytes: $0.bytes) },
                savedTensors: saved.map {
                    SavedTensor(layer: $0.descriptor.layerPath, keptBy: $0.keptByLayer, phase: phases[$0.id].description, name: $0.descriptor.name, timestep: $0.descriptor.timestep,
                                role: $0.descriptor.role.reportKey, shape: $0.descriptor.shape.dims,
                                bytes: rounding.roundedBytes($0.bytes))
                },
                forwardFlops: plan.forwardFlops, recomputeFlops: plan.recomputeFlops, backwardFlops: plan.backwardFlops)
        }
        self.notApplicable = notApplicable.map { NotApplicable(strategy: $0.0.rawValue, reason: $0.1) }
        self.layers = layers?.map {
            LayerInfo(layer: $0.path, kind: $0.kind, inputShape: $0.input.dims, outputShape: $0.output.dims, parameters: $0.parameters)
        }
    }
}

/// One row of `plan --layers`: a layer with its inferred shapes and parameter count.
struct LayerRow {
    var path: String
    var kind: String
    var input: TensorShape
    var output: TensorShape
    var parameters: Int

    static func rows(_ profile: Profile) -> [LayerRow] {
        var rows: [LayerRow] = []
        func add(_ layers: [Layer], columns: Int) {
            for layer in layers {
                let count = LayerMemoryTable.declaration(for: layer).parameters.reduce(0) { $0 + $1.shape.elementCount } * columns
                rows.append(LayerRow(path: layer.path, kind: layer.kind.keyword, input: layer.inputShape, output: layer.outputShape,
                                     parameters: count))
                switch layer.kind {
                case .residual(let spec): add(spec.main, columns: columns); add(spec.shortcut, columns: columns)
                case .branches(let spec): for path in spec.paths { add(path, columns: columns) }
                case .attention(let spec): add(spec.parts, columns: columns)
                case .reversible(let stage): for block in stage.blocks { add(block.f, columns: columns); add(block.g, columns: columns) }
                case .trevsnn(let net):
                    for level in net.levels {
                        rows.append(LayerRow(path: level.path + "/alpha", kind: "alpha", input: level.stateShape, output: level.stateShape,
                                             parameters: level.channels * profile.timesteps))
                        add(level.down, columns: profile.timesteps)
                        add(level.up, columns: profile.timesteps)
                        add(level.blocks, columns: profile.timesteps)
                    }
                    add(net.head, columns: profile.timesteps)
                default: break
                }
            }
        }
        add(profile.layers, columns: 1)
        return rows
    }
}

/// A pytorch-cuda step on the GPU (`plan` and `max-batch`): the caching allocator's figures and
/// the terms outside it.
struct CUDAEstimateJSON: Codable {
    var peakAllocatedBytes: Int
    var peakReservedBytes: Int
    var reservedOverAllocated: Double
    var cublasWorkspaceBytes: Int
    var cudnnWorkspaceBytes: Int
    var contextBytes: Int
    var totalBytes: Int
    var decidingTerm: String

    init(_ e: CUDAMemoryEstimate) {
        peakAllocatedBytes = e.peakAllocatedBytes
        peakReservedBytes = e.peakReservedBytes
        reservedOverAllocated = e.reservedOverAllocated
        cublasWorkspaceBytes = e.cublasWorkspaceBytes
        cudnnWorkspaceBytes = e.cudnnWorkspaceBytes
        contextBytes = e.contextBytes
        totalBytes = e.totalBytes
        decidingTerm = e.decidingTerm
    }
}
