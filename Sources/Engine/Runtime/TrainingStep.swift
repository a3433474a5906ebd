import Allocator
import MemoryModel
import Planner
import Profiles

/// One training step's tensors and the walk through the network: the engine's counterpart of
/// the planner's `TraceBuilder`. Every buffer it allocates is declared by `LayerMemoryTable`,
/// and it allocates and frees them in the order the planner's schedules predict, so that the
/// measured trace can be held against the planned one event by event.
final class TrainingStep<T: EngineScalar> {
    struct SavedKey: Hashable {
        var path: String
        var timestep: Int?
    }

    enum ReversibleMode { case storeGraphs, keepOutputOnly }

    let profile: Profile
    let batch: Int
    let timesteps: Int
    let heap: TensorHeap<T>
    let parameters: ParameterStore<T>
    /// Whether backward carries dL/dv to the previous timestep (false in SLTT).
    var temporalGradient = true
    /// Neurons fire the surrogate's primitive instead of a Heaviside step (gradient checks only).
    var smoothSpikes = false
    /// Evaluation: batch norm uses its running statistics, and forward keeps nothing.
    var inference = false
    /// Seeds the dropout masks of this step (the same mask for every timestep and recomputation).
    var dropoutSeed: UInt64 = 0

    var saved: [SavedKey: [Int]] = [:]
    var forwardStates: [String: Int] = [:]
    var backwardStates: [String: Int] = [:]
    /// Sees the states a reversible network reconstructs, once when forward computes them and
    /// once when backward rebuilds them: (key, rebuilt, tensor). Tests hold the two against each other.
    var stateObserver: ((String, Bool, Int) -> Void)?
    /// Loss and correct predictions of the step, filled by the schedule.
    var loss = 0.0
    var correct = 0

    init(profile: Profile, batch: Int, timesteps: Int, heap: TensorHeap<T>, parameters: ParameterStore<T>) {
        self.profile = profile
        self.batch = batch
        self.timesteps = timesteps
        self.heap = heap
        self.parameters = parameters
    }

    // MARK: Allocation helpers (the planner's shapes: [B, ...], multi-step [T, B, ...])

    func allocate(_ buffer: BufferDeclaration, path: String, span: Span, zeroed: Bool = false) throws -> Int {
        var shape = buffer.shape
        if buffer.perSample { shape = shape.prepending(batch) }
        if span == .allTimesteps && buffer.perTimestep { shape = shape.prepending(timesteps) }
        return try heap.allocate(path, buffer.name, timestep: span.timestep, role: buffer.role, shape: shape,
                                 indices: buffer.dtype == .int32, zeroed: zeroed)
    }

    func allocateActivation(_ path: String, _ name: String, role: TensorRole, shape: TensorShape, span: Span,
                            zeroed: Bool = false) throws -> Int {
        try allocate(BufferDeclaration(name: name, role: role, shape: shape), path: path, span: span, zeroed: zeroed)
    }

    /// Scratch for one operation: allocated with its declared shape exactly, freed right after.
    func allocateScratch(_ buffer: BufferDeclaration, path: String, span: Span) throws -> Int {
        try heap.allocate(path, buffer.name, timestep: span.timestep, role: buffer.role, shape: buffer.scratchShape(batch: batch))
    }

    func keep(_ ids: [Int], key: SavedKey) {
        saved[key, default: []] += ids
    }

    func releaseSaved(_ key: SavedKey) throws {
        for id in saved.removeValue(forKey: key) ?? [] { try heap.release(id) }
    }

    func releaseForwardStates() throws {
        for path in forwardStates.keys.sorted() { try heap.release(forwardStates[path]!) }
        forwardStates = [:]
    }

    func releaseBackwardStates() throws {
        for path in backwardStates.keys.sorted() { try heap.release(backwardStates[path]!) }
        backwardStates = [:]
    }

    // MARK: Forward

    func forward(_ layers: [Layer], _ x: Int, span: Span, saving: Bool, prefix: String = "",
                 reversible: ReversibleMode = .storeGraphs) throws -> Int {
        var current = x
        for layer in layers {
            current = try forward(layer, current, span: span, saving: saving, prefix: prefix, reversible: reversible)
        }
        return current
    }

    func forward(_ layer: Layer, _ x: Int, span: Span, saving: Bool, prefix: String, reversible: ReversibleMode) throws -> Int {
        let path = prefix + layer.path
        switch layer.kind {
        case .residual(let spec):
            heap.retain(x)
            let main = try forward(spec.main, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            let shortcut = try forward(spec.shortcut, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
            return try heap.combine(into: main, shortcut)
        case .branches(let spec):
            return try forwardBranches(layer, spec, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        case .reversible(let stage):
            return try forwardReversible(layer, stage, x, span: span, saving: saving, mode: reversible)
        case .trevsnn:
            preconditionFailure("a T-RevSNN network is run by its schedule, not as a layer")
        case .attention(let spec):
            return try forwardAttention(layer, spec, x, span: span, saving: saving, prefix: prefix, reversible: reversible)
        default:
            break
        }
        let declaration = LayerMemoryTable.declaration(for: layer)
        if declaration.outputIsView { return x }
        for state in declaration.forwardState where forwardStates[path] == nil {
            let id = try allocate(state, path: path, span: span == .allTimesteps ? .once : span)
            if case .neuron(let neuron) = layer.kind, neuron.type == .alif {
                alifInitialState(neuron, state: heap.values(id), count: heap.shape(id).elementCount / 2)
            } else if case .neuron(let neuron) = layer.kind {
                heap.values(id).update(repeating: T(neuronInitialPotential(neuron)), count: heap.shape(id).elementCount)
            } else if case .recurrent(let spec) = layer.kind {
                initializeRecurrentState(spec, id)
            }
            forwardStates[path] = id
        }
        let output = try allocateActivation(path, "output", role: .activation, shape: layer.outputShape, span: span)
        let own = try declaration.saved.map { try allocate($0, path: path, span: span) }
        let workspace = try declaration.forwardWorkspace.first.map { try allocateScratch($0, path: path, span: span) }
        computeForward(layer, path: path, span: span, x: x, output: output, own: own, workspace: workspace)
        if let workspace { try heap.release(workspace) }
        if saving {
            if declaration.keepsInput { heap.retain(x) }
            keep(own + (declaration.keepsInput ? [x] : []), key: SavedKey(path: path, timestep: span.timestep))
        } else {
            for id in own { try heap.release(id) }
        }
        try heap.release(x)
        if !span.isTimestep, let state = forwardStates.removeValue(forKey: path) {
            try heap.release(state)
        }
        return output
    }

    // MARK: Backward

    func backward(_ layers: [Layer], _ dY: Int, span: Span, needInputGrad: Bool, prefix: String = "",
                  reversible: ReversibleMode = .storeGraphs) throws -> Int? {
        var gradient: Int? = dY
        for (index, layer) in layers.enumerated().reversed() {
            guard let current = gradient else { break }
            gradient = try backward(layer, current, span: span, needInputGrad: index > 0 || needInputGrad, prefix: prefix,
                                    reversible: reversible)
        }
        return gradient
    }

    func backward(_ layer: Layer, _ dY: Int, span: Span, needInputGrad: Bool, prefix: String,
                  reversible: ReversibleMode) throws -> Int? {
        let path = prefix + layer.path
        switch layer.kind {
        case .residual(let spec):
            heap.retain(dY)
            let dMain = try backward(spec.main, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
            let dShortcut: Int?
            if spec.shortcut.isEmpty {
                if needInputGrad { dShortcut = dY } else { try heap.release(dY); dShortcut = nil }
            } else {
                dShortcut = try backward(spec.shortcut, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
            }
            guard let dMain, let dShortcut else { return nil }
            return try heap.combine(into: dMain, dShortcut)
        case .branches(let spec):
            return try backwardBranches(layer, spec, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
        case .reversible(let stage):
            switch reversible {
            case .storeGraphs: return try backwardStoredReversible(layer, stage, dY, span: span, needInputGrad: needInputGrad)
            case .keepOutputOnly: return try backwardReconstructingReversible(layer, stage, dY, needInputGrad: needInputGrad)
            }
        case .trevsnn:
            preconditionFailure("a T-RevSNN network is run by its schedule, not as a layer")
        case .attention(let spec):
            return try backwardAttention(layer, spec, dY, span: span, needInputGrad: needInputGrad, prefix: prefix, reversible: reversible)
        default:
            break
        }
        let declaration = LayerMemoryTable.declaration(for: layer)
        if declaration.outputIsView {
            if needInputGrad { return dY }
            try heap.release(dY)
            return nil
        }
        if temporalGradient {
            for state in declaration.backwardState where backwardStates[path] == nil {
                backwardStates[path] = try allocate(state, path: path, span: span == .allTimesteps ? .once : span, zeroed: true)
            }
        }
        let allocatesInputGrad = needInputGrad || !declaration.canSkipInputGradient
        let dX = allocatesInputGrad ? try allocateActivation(path, "dInput", role: .workspace, shape: layer.inputShape, span: span) : nil
        let workspace = try declaration.backwardWorkspace.first.map { try allocateScratch($0, path: path, span: span) }
        let key = SavedKey(path: path, timestep: span.timestep)
        computeBackward(layer, path: path, span: span, dY: dY, dX: dX, saved: saved[key] ?? [], workspace: workspace,
                        dv: temporalGradient ? backwardStates[path] : nil)
        if let workspace { try heap.release(workspace) }
        try releaseSaved(key)
        try heap.release(dY)
        if !span.isTimestep, let state = backwardStates.removeValue(forKey: path) {
            try heap.release(state)
        }
        if let dX, !needInputGrad {
            try heap.release(dX)
            return nil
        }
        return dX
    }
}
