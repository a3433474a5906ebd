import MemoryModel
import Profiles

/// A planned training step: every tensor, every allocation and free in order, and the sweep's answer.
public struct MemoryPlan: Sendable {
    public var profileName: String
    public var strategy: Strategy
    /// Whose training step this is (snnmem's engine, PyTorch on CUDA or the CPU).
    public var runtime: Runtime
    public var batch: Int
    public var timesteps: Int
    /// The checkpoint segment length (checkpoint only).
    public var segment: Int?
    public var rounding: AllocatorRounding
    public var tensors: [PlannedTensor]
    public var events: [LifetimeEvent]
    public var sweep: PeakSweep.Result
    /// FLOPs of one forward pass over all timesteps.
    public var forwardFlops: Double
    /// FLOPs spent again in backward to recompute or reconstruct what forward did not keep.
    public var recomputeFlops: Double
    public var backwardFlops: Double

    public var peakBytes: Int { sweep.peakBytes }
    public var bytesByRoleAtPeak: RoleBytes { sweep.bytesByRoleAtPeak }
    /// The most bytes held for backward at any one moment: the tensors forward (or a
    /// recomputation) keeps until backward frees them. This is what the strategies trade: it is
    /// proportional to T under bptt, constant in T under sltt and trevsnn, and constant in the
    /// number of reversible blocks under revsnn.
    public var activationBytes: Int {
        var live = 0
        var peak = 0
        for event in events where tensors[event.tensorID].keptForBackward {
            let bytes = rounding.roundedBytes(event.bytes)
            live += event.kind == .allocate ? bytes : -bytes
            peak = max(peak, live)
        }
        return peak
    }

    /// Tensors held from forward (or a recomputation) for backward, in allocation order.
    public var savedTensors: [PlannedTensor] { tensors.filter(\.keptForBackward) }

    /// Bytes kept for backward per layer, attributed as PyTorch's saved-tensor hooks attribute
    /// them: to the first layer that keeps the tensor (a conv keeps its input, which the layer
    /// before allocated). In the order the layers first kept something.
    public var savedBytesByLayer: [(layer: String, bytes: Int)] { savedBytesByLayer(where: { _ in true }) }

    /// The same for the kept tensors that pass `include` (one timestep's, or those kept outside
    /// a recomputation).
    public func savedBytesByLayer(where include: (PlannedTensor) -> Bool) -> [(layer: String, bytes: Int)] {
        var order: [String] = []
        var bytes: [String: Int] = [:]
        for tensor in savedTensors where include(tensor) {
            let layer = tensor.keptByLayer ?? tensor.descriptor.layerPath
            if bytes[layer] == nil { order.append(layer) }
            bytes[layer, default: 0] += rounding.roundedBytes(tensor.bytes)
        }
        return order.map { ($0, bytes[$0]!) }
    }

    /// What PyTorch's saved-tensor hooks see outside a checkpoint's recomputation (the
    /// checkpoint's own hooks take those), per layer; under sltt only `timestep`'s, since each
    /// timestep saves its own and frees them before the next.
    public func savedBytesSeenByHooks(timestep: Int?) -> [(layer: String, bytes: Int)] {
        let phases = allocationPhases
        return savedBytesByLayer { tensor in
            if case .recompute = phases[tensor.id] { return false }
            // Made in a forward but saved only by recomputations (a checkpointed dropout's mask).
            if tensor.keptOutsideRecompute != true, case .forward = phases[tensor.id] { return false }
            if strategy == .sltt, let timestep { return tensor.descriptor.timestep == timestep }
            return true
        }
    }

    /// The phase in which each tensor was allocated, by tensor id.
    public var allocationPhases: [TrainingPhase] {
        var phases = [TrainingPhase](repeating: .setup, count: tensors.count)
        for event in events where event.kind == .allocate { phases[event.tensorID] = event.phase }
        return phases
    }

    /// The allocation that reached the peak.
    public var peakTensor: PlannedTensor? { sweep.peakEventIndex.map { tensors[events[$0].tensorID] } }

    /// Tensors live at the peak, largest first.
    public var tensorsLiveAtPeak: [PlannedTensor] {
        guard let index = sweep.peakEventIndex else { return [] }
        return PeakSweep(rounding: rounding).liveTensors(events, after: index).map { tensors[$0] }
            .sorted { ($0.bytes, -$0.id) > ($1.bytes, -$1.id) }
    }

    /// Bytes of the tensors that survive the step (parameters, gradients, optimizer state).
    public var persistentBytes: Int {
        tensors.filter(\.persistent).reduce(0) { $0 + rounding.roundedBytes($1.bytes) }
    }
}
