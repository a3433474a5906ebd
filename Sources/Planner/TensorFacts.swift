import MemoryModel

/// What a trace builder reads back about a tensor it planned, kept for every tensor whether or not
/// its description (`PlannedTensor`) is: the bytes and role are in its allocation event.
struct TensorFacts {
    /// Survives the step (parameters, gradients, optimizer state).
    var persistent: Bool
    var dtype: DType
    /// Held from forward (or a recomputation) until backward needs it.
    var keptForBackward = false
}
