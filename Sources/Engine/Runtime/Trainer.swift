import Allocator
import Foundation
import MemoryModel
import Planner
import Profiles

/// Why the engine cannot train a profile as asked.
public enum TrainerError: Error, CustomStringConvertible, Equatable {
    case unsupported(String)
    case badBatch(expected: Int, images: Int, labels: Int)
    /// The plan's peak is more than this machine's memory and no `--memory-limit` asked to see
    /// where it would stop: refused before training instead of being killed by the kernel.
    case exceedsMachineMemory(plannedPeakBytes: Int, machineBytes: Int, largestBatch: Int)
    /// A run keeps every allocation of every step for its trace: more steps than
    /// `MemoryRun.maxRecordedEvents` allow are refused before training, with the largest count.
    case tooManySteps(steps: Int, eventsPerStep: Int, largestSteps: Int)

    public var description: String {
        switch self {
        case .exceedsMachineMemory(let planned, let machine, let largest):
            let advice = largest >= 1 ? "use --batch \(largest) or less" : "use a smaller T or network"
            return "the plan needs \(ByteCount.format(planned)), more than this machine's \(ByteCount.format(machine)) of memory: \(advice), or give --memory-limit to watch where it stops"
        case .tooManySteps(let steps, let eventsPerStep, let largest):
            return "--steps \(steps): a run records every allocation and free of every step (\(eventsPerStep) a step here) for its trace, "
                + "and at most \(MemoryRun.maxRecordedEvents) in all; use --steps \(largest) or less"
        case .unsupported(let reason): return reason
        case .badBatch(let expected, let images, let labels):
            return "a batch needs \(expected) image values and labels matching the batch size; got \(images) values and \(labels) labels"
        }
    }
}

/// What one training step gave.
public struct StepResult: Sendable, Equatable {
    public var loss: Double
    public var correct: Int
    public var stepMs: Double
}

/// A real CPU trainer for a profile under one strategy. Every buffer goes through `allocator`;
/// parameters, gradients, optimizer state and the convs' spike-products weight panels are allocated
/// once, the rest each step.
public final class Trainer<T: EngineScalar> {
    public let profile: Profile
    public let strategy: Strategy
    public let batch: Int
    public let timesteps: Int
    public let segment: Int?
    public let allocator: TensorAllocator
    let heap: TensorHeap<T>
    let parameters: ParameterStore<T>
    /// The convs' spike-products weight panels (`SpikePanel`): tracked tensors allocated after the
    /// parameters and kept for the run, as the plan declares them; registered for Float only, the
    /// kernels' type (a Double trainer allocates them all the same, unused).
    let spikePanels = SpikeStepPanels()
    /// For whole-network gradient checks: neurons fire the surrogate's primitive of h - threshold
    /// instead of a Heaviside step, which makes the network differentiable. Never for training.
    public var smoothSpikes = false
    /// Sees every state a reversible network reconstructs in backward, and the same state when
    /// forward computed it: (key, rebuilt, values). For reconstruction-error checks; it copies.
    public var stateObserver: ((String, Bool, [T]) -> Void)?
    /// Runs, instead of the strategy's schedule, BPTT with SLTT's per-timestep loss and the
    /// temporal path cut: the reference SLTT's gradients are checked against (bptt profiles only).
    public var bpttWithTemporalPathCut = false
    /// Seeds the next step's dropout masks; `step` moves it on, so each training step draws new
    /// masks while repeated `lossAndGradients` calls (finite differences) see the same ones.
    public var dropoutSeed: UInt64

    public init(profile: Profile, strategy: Strategy, batch: Int? = nil, timesteps: Int? = nil, segment: Int? = nil,
                allocator: TensorAllocator, seed: UInt64 = 1) throws {
        if let reason = strategy.notApplicableReason(profile) {
            throw PlannerError.notApplicable(strategy: strategy, reason: reason)
        }
        self.profile = profile
        self.strategy = strategy
        self.batch = batch ?? profile.batch
        self.timesteps = timesteps ?? profile.timesteps
        self.segment = strategy == .checkpoint ? (segment ?? Strategy.defaultSegment(timesteps: timesteps ?? profile.timesteps)) : nil
        self.allocator = allocator
        dropoutSeed = seed &* 0x2545_F491_4F6C_DD1D
        if let segment = self.segment, segment < 1 || segment > self.timesteps {
            throw PlannerError.invalidArgument(name: "segment", value: "\(segment)", fix: "use a segment between 1 and T = \(self.timesteps)")
        }
        if T.self == Float.self && profile.dtype != .float32 {
            throw TrainerError.unsupported("\(profile.sourcePath): the engine trains in float32, the profile says \(profile.dtype.rawValue); "
                + "`snnmem plan` predicts \(profile.dtype.rawValue) byte counts, `run` and `train` need `dtype: float32`")
        }
        for layer in profile.allLayers {
            if case .batchNorm(let channels) = layer.kind, self.batch * layer.inputShape.elementCount / channels < 2 {
                throw TrainerError.unsupported("batch norm '\(layer.path)' sees one value per channel at batch \(self.batch); use a batch of 2 or more")
            }
        }
        heap = TensorHeap(allocator: allocator)
        try heap.begin(.setup)
        parameters = try ParameterStore(profile: profile, timesteps: self.timesteps, heap: heap, seed: seed)
        for (path, buffer) in ParameterLayout.keptScratch(ParameterLayout.entries(of: profile, timesteps: self.timesteps)) {
            precondition(buffer.name == SpikePanel.name && buffer.dtype == .float32, "kept scratch \(buffer.name) of \(path) has no engine use")
            let rows = buffer.shape.dims[0], columns = buffer.shape.dims[1]
            let bytes = buffer.shape.elementCount * MemoryLayout<Float>.stride
            // Page-aligned: the kernels stream its rows (`allocatePageAligned` says why).
            let panel = try allocator.allocatePageAligned(bytes: bytes, role: buffer.role, layerPath: path, name: buffer.name,
                                                          timestep: nil, phase: .setup)
            if T.self == Float.self {
                let weight = heap.values(parameters.slot(path, "weight").value)
                spikePanels.add(weight: UnsafeRawPointer(weight).assumingMemoryBound(to: Float.self),
                                panel: panel.pointer.assumingMemoryBound(to: Float.self), rows: rows, columns: columns)
            }
            keptBuffers.append(panel)
        }
    }

    /// The buffers behind `spikePanels`, held for the trainer's life as the parameters are.
    private var keptBuffers: [TensorBuffer] = []

    /// The conv weight panels the spike products keep (`SpikePanel`): how many, and their bytes.
    public var spikePanelCount: Int { keptBuffers.count }
    public var spikePanelBytes: Int { keptBuffers.reduce(0) { $0 + $1.requestedBytes } }

    /// Values of the input batch: batch x channels x height x width.
    public var imageValues: Int { profile.inputBatchShape(batch: batch, timesteps: timesteps).elementCount }

    /// One training step: forward, backward, optimizer update.
    public func step(images: [T], labels: [Int32]) throws -> StepResult {
        let start = DispatchTime.now().uptimeNanoseconds
        let step = try computeGradients(images: images, labels: labels)
        try heap.begin(.optimizerStep)
        parameters.step(heap: heap)
        dropoutSeed &+= 1
        try heap.release(step.input)
        try heap.release(step.labels)
        let stepMs = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
        return StepResult(loss: step.loss, correct: step.correct, stepMs: stepMs)
    }

    /// Forward and backward only: gradients are left in place (see `gradient(_:_:)`), nothing is updated.
    public func lossAndGradients(images: [T], labels: [Int32]) throws -> (loss: Double, correct: Int) {
        let step = try computeGradients(images: images, labels: labels)
        try heap.begin(.optimizerStep)
        try heap.release(step.input)
        try heap.release(step.labels)
        return (step.loss, step.correct)
    }

    private func computeGradients(images: [T], labels: [Int32]) throws -> (input: Int, labels: Int, loss: Double, correct: Int) {
        guard images.count == imageValues, labels.count == batch else {
            throw TrainerError.badBatch(expected: imageValues, images: images.count, labels: labels.count)
        }
        parameters.zeroGradients(heap: heap)
        try heap.begin(.setup)
        let input = try heap.allocate("input", "images", timestep: nil, role: .input, shape: profile.inputBatchShape(batch: batch, timesteps: timesteps))
        images.withUnsafeBufferPointer { heap.values(input).update(from: $0.baseAddress!, count: imageValues) }
        let labelTensor = try heap.allocate("input", "labels", timestep: nil, role: .input, shape: TensorShape([batch]), indices: true)
        labels.withUnsafeBufferPointer { heap.indices(labelTensor).update(from: $0.baseAddress!, count: batch) }
        let step = TrainingStep(profile: profile, batch: batch, timesteps: timesteps, heap: heap, parameters: parameters)
        step.smoothSpikes = smoothSpikes
        step.dropoutSeed = dropoutSeed
        if let observer = stateObserver {
            step.stateObserver = { [heap] key, rebuilt, id in
                observer(key, rebuilt, Array(UnsafeBufferPointer(start: heap.values(id), count: heap.shape(id).elementCount)))
            }
        }
        // The weights do not change until the optimizer runs: convs keep their transposed panels over the step.
        try SpikeProducts.withStepPanels(spikePanels) {
            switch strategy {
            case _ where bpttWithTemporalPathCut: try step.runBPTTWithTemporalPathCut(input: input, labels: labelTensor)
            case .bptt where profile.trevsnnNetwork != nil: try step.runTRev(input: input, labels: labelTensor, reconstruct: false)
            case .trevsnn: try step.runTRev(input: input, labels: labelTensor, reconstruct: true)
            case .bptt: try step.runBPTT(input: input, labels: labelTensor)
            case .checkpoint: try step.runCheckpoint(input: input, labels: labelTensor, segment: segment!)
            case .sltt: try step.runSLTT(input: input, labels: labelTensor)
            case .revsnn: try step.runRevSNN(input: input, labels: labelTensor)
            }
        }
        precondition(step.saved.isEmpty, "saved tensors left after backward: \(step.saved.keys.map(\.path))")
        return (input, labelTensor, step.loss, step.correct)
    }

    /// Correct predictions on a batch of any size (evaluation mode: running batch-norm statistics).
    public func evaluate(images: [T], labels: [Int32]) throws -> (correct: Int, loss: Double) {
        if profile.trevsnnNetwork != nil {
            throw TrainerError.unsupported("evaluation of T-RevSNN networks is not implemented; train and run measure them")
        }
        let count = labels.count
        let shape = profile.inputBatchShape(batch: count, timesteps: timesteps)
        guard count > 0, images.count == shape.elementCount else {
            throw TrainerError.badBatch(expected: shape.elementCount, images: images.count, labels: count)
        }
        try heap.begin(.setup)
        let input = try heap.allocate("input", "images", timestep: nil, role: .input, shape: shape)
        images.withUnsafeBufferPointer { heap.values(input).update(from: $0.baseAddress!, count: images.count) }
        let labelTensor = try heap.allocate("input", "labels", timestep: nil, role: .input, shape: TensorShape([count]), indices: true)
        labels.withUnsafeBufferPointer { heap.indices(labelTensor).update(from: $0.baseAddress!, count: count) }
        let step = TrainingStep(profile: profile, batch: count, timesteps: timesteps, heap: heap, parameters: parameters)
        // The weights do not change while evaluating either: the convs read their kept panels.
        let correct = try SpikeProducts.withStepPanels(spikePanels) { try step.runInference(input: input, labels: labelTensor) }
        try heap.release(input)
        try heap.release(labelTensor)
        return (correct, step.loss)
    }

    /// A parameter's gradient after `lossAndGradients` (path and name as in the planner's tensors).
    public func gradient(_ path: String, _ name: String) -> [T] {
        let slot = parameters.slot(path, name)
        guard let gradient = slot.gradient else { return [] }
        return Array(UnsafeBufferPointer(start: heap.values(gradient), count: slot.count))
    }

    /// A parameter's values.
    public func parameter(_ path: String, _ name: String) -> [T] {
        let slot = parameters.slot(path, name)
        return Array(UnsafeBufferPointer(start: heap.values(slot.value), count: slot.count))
    }

    /// Overwrites a parameter's values (finite-difference checks perturb them).
    public func setParameter(_ path: String, _ name: String, _ values: [T]) {
        let slot = parameters.slot(path, name)
        precondition(values.count == slot.count)
        values.withUnsafeBufferPointer { heap.values(slot.value).update(from: $0.baseAddress!, count: slot.count) }
    }

    /// Every trainable parameter as (path, name), in allocation order.
    public var trainableParameters: [(path: String, name: String)] {
        parameters.order.compactMap { key in
            guard parameters.slots[key]?.gradient != nil, let colon = key.lastIndex(of: ":") else { return nil }
            return (String(key[..<colon]), String(key[key.index(after: colon)...]))
        }
    }
}
