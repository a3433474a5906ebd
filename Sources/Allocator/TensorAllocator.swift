import MemoryModel

/// Where every tensor buffer of training comes from. Implementations record each allocation and
/// free in `recorder`, enforce its budget, and never crash on a lifetime mistake: a double free
/// throws `AllocatorError.doubleFree` and is ignored, a leak is reported by `recorder.endStep()`.
///
/// Not thread-safe: one allocator per training thread.
public protocol TensorAllocator: AnyObject {
    /// Written into traces ("jemalloc", "counting").
    var name: String { get }
    var recorder: AllocationRecorder { get }

    /// Throws `AllocatorError.outOfMemory` when the budget would be exceeded (nothing allocated).
    func allocate(bytes: Int, role: TensorRole, layerPath: String, name: String, timestep: Int?,
                  phase: TrainingPhase) throws -> TensorBuffer

    /// Throws `AllocatorError.doubleFree` for a buffer that is not live; the memory is not touched.
    func free(_ buffer: TensorBuffer) throws
}

extension TensorAllocator {
    /// Allocates the tensor a layer declared, in the bytes its shape and dtype give.
    public func allocate(_ descriptor: TensorDescriptor, phase: TrainingPhase) throws -> TensorBuffer {
        try allocate(bytes: descriptor.bytes, role: descriptor.role, layerPath: descriptor.layerPath,
                     name: descriptor.name, timestep: descriptor.timestep, phase: phase)
    }

    /// Allocates in the phase last begun with `beginPhase(_:)`.
    public func allocate(bytes: Int, role: TensorRole, layerPath: String, name: String = "",
                         timestep: Int? = nil) throws -> TensorBuffer {
        try allocate(bytes: bytes, role: role, layerPath: layerPath, name: name, timestep: timestep,
                     phase: recorder.currentPhase)
    }

    /// Marks a phase boundary (and samples jemalloc, for the jemalloc allocator).
    public func beginPhase(_ phase: TrainingPhase) throws {
        try recorder.beginPhase(phase)
    }
}
