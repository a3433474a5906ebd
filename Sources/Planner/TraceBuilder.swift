import MemoryModel
import Profiles

/// Simulates one training step's allocations: every tensor the engine will allocate, in the
/// order it allocates them, with reference counts deciding when each is freed. The schedules
/// (one file each) drive it; the layer walk turns `LayerMemoryTable` declarations into events.
struct TraceBuilder {
    struct SavedKey: Hashable {
        var path: String
        var timestep: Int?
    }

    /// A parameter of a layer: hashed as two strings, so that no "path/name" is built per lookup.
    struct ParameterKey: Hashable {
        var path: String
        var name: String
    }

    let profile: Profile
    let batch: Int
    let timesteps: Int
    /// Whose layer table the walk follows (`LayerMemoryTable` or `PyTorchLayerTable`).
    let runtime: Runtime
    /// PyTorch: the half dtype `torch.autocast` computes in, for a float16/bfloat16 profile
    /// (the model, its gradients and optimizer state stay float32).
    var autocast: DType? { Self.autocast(profile, runtime) }

    static func autocast(_ profile: Profile, _ runtime: Runtime) -> DType? {
        runtime.isPyTorch && profile.dtype != .float32 ? profile.dtype : nil
    }

    /// float16 autocast trains with a GradScaler (its range needs loss scaling); bfloat16's does not.
    var usesGradScaler: Bool { autocast == .float16 }
    /// Whether backward carries dL/dv from one timestep to the previous (false in SLTT).
    var temporalGradient = true

    /// Whether each tensor is described (`tensors`: its layer, name, shape). A plan asked only
    /// for its peak (`Planner.peak`) needs the events alone, and skips making a shape, a
    /// descriptor and later freeing them for every tensor: most of a walk's cost.
    let describesTensors: Bool
    /// Every tensor's description, by id; empty unless `describesTensors`.
    private(set) var tensors: [PlannedTensor] = []
    private(set) var events: [LifetimeEvent] = []
    /// What the walk reads back about a tensor, by id, kept whether or not it is described.
    private var facts: [TensorFacts] = []
    private var refcounts: [Int] = []
    /// The index in `events` of each tensor's allocation, by tensor id.
    private var allocationEvents: [Int] = []
    var phase: TrainingPhase = .setup

    /// Buffers kept for backward, by layer and timestep.
    var saved: [SavedKey: [Int]] = [:]
    /// Membrane potentials carried across timesteps in forward, by layer path.
    var forwardStates: [String: Int] = [:]
    /// dL/dv carried across timesteps in backward, by layer path.
    var backwardStates: [String: Int] = [:]
    /// PyTorch: state a module holds until `reset_net` (a neuron's v), by layer path.
    var heldStates: [String: Int] = [:]
    /// How many timesteps a multi-step (`.allTimesteps`) run covers: T, or a checkpoint segment's k.
    var segmentLength: Int?
    var multiStepLength: Int { segmentLength ?? timesteps }
    /// PyTorch: whether the final v's graph keeps what it saved (false inside a checkpoint's
    /// recomputation, whose saved tensors all die with the segment's backward).
    var finalStateHoldsGraph = true
    /// PyTorch autocast: the weight casts `cached_cast` keeps until the autocast region exits,
    /// by layer path, while a region spans several forwards of a layer (checkpoint segments).
    var castCache: [String: Int]?
    /// PyTorch autocast: weight casts no autograd node saved (a linear layer on the network's input:
    /// addmm keeps the weight only for the input's gradient), held by autocast's cache until the
    /// region exits after the loss.
    var unsavedCasts: [Int] = []
    /// PyTorch autocast under checkpoint: backward segments before the last keep their half
    /// weight gradients for the one ToCopyBackward of the shared cast.
    var defersGradientCasts = false
    var pendingHalfGradients: [String: [Int]] = [:]
    /// PyTorch checkpoint: backward computes each neuron's start-state gradient ([B, ...]),
    /// which lives until the previous segment's backward of that neuron consumes it.
    var stateGradientsFlowBack = false
    var stateGradients: [String: Int] = [:]
    /// PyTorch: saved tensors held by a module's final v (its graph), not freed by backward.
    var heldSaved: [String: [Int]] = [:]
    /// PyTorch: parameter gradients, created by the first backward that reaches them.
    var gradients: [ParameterKey: Int] = [:]
    /// PyTorch checkpoint: layers whose weight gradient so far is one timestep's (a transposed view,
    /// which autograd's buffer adds the next segment's gradient to out of place).
    var weightGradientIsView: Set<String> = []
    /// PyTorch: an empty `ScriptTemporaries` whose storage the next layer script runs in, handed
    /// from run to run so that each does not grow a new list.
    var spareScriptTemporaries = ScriptTemporaries()
    /// The most keys `saved` held at once, so that a later walk can reserve them.
    private(set) var savedKeysHighWater = 0

    var forwardFlops = 0.0
    var recomputeFlops = 0.0
    var backwardFlops = 0.0

    /// The threads and ISA oneDNN's scratchpads are sized for on pytorch-cpu.
    var oneDNNMachine = OneDNNMachine.fixtures
    /// The layer tables' entries, made once per layer for this plan.
    var layerTables: LayerTableCache
    /// Every parameter tensor (`ParameterLayout`), listed once for the set-up and the optimizer step.
    lazy var parameterEntries = ParameterLayout.entries(of: profile, timesteps: timesteps)
    /// The layers' scratch kept for the run (`ParameterLayout.keptScratch`), allocated after the parameters.
    lazy var keptScratch = ParameterLayout.keptScratch(parameterEntries)

    /// `layerTables`: made for this profile and runtime by an earlier walk, to share.
    init(profile: Profile, batch: Int, timesteps: Int, runtime: Runtime = .snnmem, describesTensors: Bool = true,
         layerTables: LayerTableCache? = nil) {
        self.describesTensors = describesTensors
        self.profile = profile
        self.batch = batch
        self.timesteps = timesteps
        self.runtime = runtime
        self.layerTables = layerTables
            ?? LayerTableCache(profile: profile, device: runtime == .pytorchCUDA ? .cuda : .cpu, autocast: Self.autocast(profile, runtime))
    }

    // MARK: - Allocation

    /// `name` is only made when the tensor is described.
    @discardableResult
    mutating func allocate(_ path: String, _ name: @autoclosure () -> String, timestep: Int?, role: TensorRole, shape: TensorShape,
                           dtype: DType? = nil, persistent: Bool = false) -> Int {
        let dtype = dtype ?? profile.dtype
        guard describesTensors else {
            return record(role: role, bytes: shape.elementCount * dtype.byteWidth, dtype: dtype, persistent: persistent)
        }
        let descriptor = TensorDescriptor(layerPath: path, name: name(), timestep: timestep, role: role, shape: shape, dtype: dtype)
        tensors.append(PlannedTensor(id: facts.count, descriptor: descriptor, keptForBackward: false, persistent: persistent))
        return record(role: role, bytes: descriptor.bytes, dtype: dtype, persistent: persistent)
    }

    /// Room for this many events and tensors (a walk of the same profile under another strategy
    /// tells about how many), so that the arrays do not grow by copying themselves.
    mutating func reserveCapacity(events eventCount: Int, tensors tensorCount: Int, savedKeys savedKeyCount: Int) {
        events.reserveCapacity(eventCount)
        saved.reserveCapacity(savedKeyCount)
        facts.reserveCapacity(tensorCount)
        refcounts.reserveCapacity(tensorCount)
        allocationEvents.reserveCapacity(tensorCount)
        if describesTensors { tensors.reserveCapacity(tensorCount) }
    }

    var tensorCount: Int { facts.count }

    /// A new tensor's id, facts and allocation event.
    private mutating func record(role: TensorRole, bytes: Int, dtype: DType, persistent: Bool) -> Int {
        let id = facts.count
        facts.append(TensorFacts(persistent: persistent, dtype: dtype))
        refcounts.append(1)
        allocationEvents.append(events.count)
        events.append(LifetimeEvent(kind: .allocate, tensorID: id, bytes: bytes, role: role, phase: phase))
        return id
    }

    /// Allocates a declared buffer for a span: per-sample buffers get the batch, multi-step spans the time axis.
    mutating func allocate(_ buffer: BufferDeclaration, path: String, span: Span) -> Int {
        let multiStep = span == .allTimesteps && buffer.perTimestep
        guard describesTensors else {
            // The bytes of the shape below, without making it.
            let elements = buffer.shape.elementCount * (buffer.perSample ? batch : 1) * (multiStep ? multiStepLength : 1)
            let dtype = buffer.dtype ?? profile.dtype
            return record(role: buffer.role, bytes: elements * dtype.byteWidth, dtype: dtype, persistent: false)
        }
        let shape: TensorShape
        switch (buffer.perSample, multiStep) {
        case (true, true): shape = buffer.shape.prepending(multiStepLength, batch)
        case (true, false): shape = buffer.shape.prepending(batch)
        case (false, true): shape = buffer.shape.prepending(multiStepLength)
        case (false, false): shape = buffer.shape
        }
        return allocate(path, buffer.name, timestep: span.timestep, role: buffer.role, shape: shape, dtype: buffer.dtype)
    }

    /// An activation-shaped tensor ([B, ...] or [T, B, ...]) for a span.
    mutating func allocateActivation(_ path: String, _ name: String, role: TensorRole, shape: TensorShape, span: Span) -> Int {
        allocate(BufferDeclaration(name: name, role: role, shape: shape), path: path, span: span)
    }

    /// Scratch that lives only inside one operation.
    mutating func allocateAndFree(_ buffer: BufferDeclaration, path: String, span: Span) {
        let id = allocate(path, buffer.name, timestep: span.timestep, role: buffer.role, shape: buffer.scratchShape(batch: batch),
                          dtype: buffer.dtype)
        release(id)
    }

    /// Whether one reference holds the tensor (a gradient can then be summed into its storage).
    func isExclusive(_ id: Int) -> Bool { refcounts[id] == 1 }

    mutating func retain(_ id: Int) {
        precondition(refcounts[id] > 0, "retain of freed tensor \(label(id))")
        refcounts[id] += 1
    }

    mutating func release(_ id: Int) {
        precondition(refcounts[id] > 0, "release of freed tensor \(label(id))")
        refcounts[id] -= 1
        if refcounts[id] == 0 {
            // The allocation's event has the bytes and role; reading them there copies no descriptor.
            let allocation = events[allocationEvents[id]]
            events.append(LifetimeEvent(kind: .free, tensorID: id, bytes: allocation.bytes, role: allocation.role, phase: phase))
        }
    }

    /// "layer/path:name@t" of a described tensor, its id otherwise: for messages.
    func label(_ id: Int) -> String { describesTensors ? tensors[id].descriptor.label : "tensor \(id)" }

    /// A tensor's element type.
    func dtype(_ id: Int) -> DType { facts[id].dtype }

    /// Marks a tensor as held for backward. The input batch and persistent tensors are held for
    /// the whole step anyway and are not counted as kept.
    mutating func markKept(_ id: Int) {
        guard !facts[id].persistent, events[allocationEvents[id]].role != .input else { return }
        facts[id].keptForBackward = true
        if describesTensors {
            tensors[id].keptForBackward = true
            if case .recompute = phase {} else { tensors[id].keptOutsideRecompute = true }
        }
    }

    /// `a += b` (or `a -= b`): done in a's storage when nothing else holds a; otherwise the result
    /// needs a new tensor. b is released either way. The engine follows the same rule.
    mutating func combine(into a: Int, _ b: Int, name: String? = nil) -> Int {
        let result = makeWritable(a, name: name)
        release(b)
        return result
    }

    /// a itself when nothing else holds it, else a new tensor of the same shape (a is released).
    mutating func makeWritable(_ a: Int, name: String? = nil) -> Int {
        guard refcounts[a] > 1 else { return a }
        let copy: Int
        if describesTensors {
            let d = tensors[a].descriptor
            copy = allocate(d.layerPath, name ?? d.name, timestep: d.timestep, role: d.role, shape: d.shape, dtype: d.dtype)
        } else {
            let allocation = events[allocationEvents[a]]
            copy = record(role: allocation.role, bytes: allocation.bytes, dtype: facts[a].dtype, persistent: false)
        }
        release(a)
        return copy
    }

    /// Marks tensors as held for backward by a layer (the first one to keep each is recorded).
    mutating func markKept(_ ids: [Int], by layerPath: String) {
        for id in ids {
            markKept(id)
            if describesTensors && tensors[id].keptForBackward && tensors[id].keptByLayer == nil { tensors[id].keptByLayer = layerPath }
        }
    }

    mutating func keep(_ ids: [Int], key: SavedKey) {
        markKept(ids, by: key.path)
        saved[key, default: []] += ids
        savedKeysHighWater = max(savedKeysHighWater, saved.count)
    }

    mutating func releaseSaved(_ key: SavedKey) {
        for id in saved.removeValue(forKey: key) ?? [] { release(id) }
    }

    mutating func releaseForwardStates() {
        for path in forwardStates.keys.sorted() { release(forwardStates[path]!) }
        forwardStates = [:]
    }

    mutating func releaseBackwardStates() {
        for path in backwardStates.keys.sorted() { release(backwardStates[path]!) }
        backwardStates = [:]
    }

    mutating func addFlops(_ flops: Double) {
        switch phase {
        case .forward, .setup, .optimizerStep: forwardFlops += flops
        case .recompute: recomputeFlops += flops
        case .backward: backwardFlops += flops
        }
    }

    // MARK: - Set-up and the end of the step

    /// Parameters, gradients and optimizer state of every layer (per column for T-RevSNN),
    /// then the input batch and labels. Returns the input tensor and the labels.
    /// PyTorch's step starts without gradients (`zero_grad(set_to_none=True)` ended the last
    /// one; backward creates them) but with the optimizer state the first step created, and
    /// its class targets are int64.
    mutating func setUp() -> (input: Int, labels: Int) {
        phase = .setup
        let stateNames = profile.optimizer.stateNames
        // PyTorch's optimizers keep no state for a parameter that never had a gradient.
        let withoutGradient = parametersWithoutPyTorchGradient
        for entry in parameterEntries {
            let parameter = entry.parameter
            allocate(entry.path, parameter.name, timestep: nil, role: .parameter, shape: parameter.shape, dtype: .float32, persistent: true)
            guard parameter.trainable, withoutGradient.isEmpty || !withoutGradient.contains(entry.path + "/" + parameter.name) else { continue }
            if !runtime.isPyTorch {
                allocate(entry.path, parameter.name + ".grad", timestep: nil, role: .gradient, shape: parameter.shape, dtype: .float32,
                         persistent: true)
            }
            for state in stateNames {
                allocate(entry.path, parameter.name + "." + state, timestep: nil, role: .optimizerState, shape: parameter.shape,
                         dtype: .float32, persistent: true)
            }
            if runtime == .pytorchCPU && profile.optimizer.type == .adam {
                // Adam's `state['step']`: a float32 scalar per parameter, made on the host unless
                // the optimizer is fused or capturable, so on CUDA it is not GPU memory.
                allocate(entry.path, parameter.name + ".adam.step", timestep: nil, role: .optimizerState, shape: TensorShape([]),
                         dtype: .float32, persistent: true)
            }
        }
        if !runtime.isPyTorch {
            // The engine's own scratch kept from step to step (the convs' spike-products weight panels).
            for (path, buffer) in keptScratch {
                allocate(path, buffer.name, timestep: nil, role: buffer.role, shape: buffer.shape, dtype: buffer.dtype, persistent: true)
            }
        }
        if usesGradScaler {
            // `torch.amp.GradScaler`: its scale (float32) and growth tracker (int32) scalars live
            // across steps beside the optimizer's state.
            allocate("grad_scaler", "_scale", timestep: nil, role: .optimizerState, shape: TensorShape([]), dtype: .float32, persistent: true)
            allocate("grad_scaler", "_growth_tracker", timestep: nil, role: .optimizerState, shape: TensorShape([]), dtype: .int32,
                     persistent: true)
        }
        // PyTorch's images are float32 whatever autocast computes in.
        let input = allocate("input", "images", timestep: nil, role: .input, shape: profile.inputBatchShape(batch: batch, timesteps: timesteps),
                             dtype: runtime.isPyTorch ? .float32 : nil)
        let labels = allocate("input", "labels", timestep: nil, role: .input, shape: TensorShape([batch]),
                              dtype: runtime.isPyTorch ? .int64 : .int32)
        return (input, labels)
    }

    static func flatten(_ layers: [Layer]) -> [Layer] { ParameterLayout.flatten(layers) }

    static func columnPrefix(_ column: Int) -> String { ParameterLayout.columnPrefix(column) }

    /// The optimizer step updates in place; then the batch is released.
    mutating func finish(input: Int, labels: Int) {
        phase = .optimizerStep
        if runtime.isPyTorch { optimizerStepPyTorch() }
        release(input)
        release(labels)
        // functional.reset_net after the step drops every neuron's v.
        for path in heldStates.keys.sorted() {
            release(heldStates[path]!)
            for id in heldSaved[path] ?? [] { release(id) }
        }
        heldStates = [:]
        heldSaved = [:]
        weightGradientIsView = []
        precondition(saved.isEmpty, "saved tensors left after backward: \(saved.keys.map(\.path))")
        precondition(stateGradients.isEmpty, "state gradients left after backward: \(stateGradients.keys.sorted())")
        precondition(pendingHalfGradients.isEmpty, "half gradients left after backward: \(pendingHalfGradients.keys.sorted())")
        precondition(forwardStates.isEmpty && backwardStates.isEmpty, "neuron states left after the step")
    }

    var persistentIDs: Set<Int> { Set(facts.indices.filter { facts[$0].persistent }) }

    /// Whether each tensor, by id, was held from forward (or a recomputation) for backward.
    var keptForBackward: [Bool] { facts.map(\.keptForBackward) }
}
