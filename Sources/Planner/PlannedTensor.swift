import MemoryModel

/// A tensor in a planned training step.
public struct PlannedTensor: Hashable, Codable, Sendable {
    public var id: Int
    public var descriptor: TensorDescriptor
    /// Held from forward (or a recomputation) until backward needs it.
    public var keptForBackward: Bool
    /// Survives the step (parameters, gradients, optimizer state).
    public var persistent: Bool
    /// The first layer that kept it for backward (a layer keeps its input, which another layer
    /// allocated): the layer PyTorch's saved-tensor hooks attribute it to.
    public var keptByLayer: String? = nil
    /// Kept by a forward, not only by a checkpoint's recomputation (whose saves PyTorch's hooks
    /// do not see): true for dropout's mask only when a forward outside a checkpoint saved it.
    public var keptOutsideRecompute: Bool? = nil

    public var bytes: Int { descriptor.bytes }
}
