import MemoryModel

/// The deterministic test double: same protocol and recorder as `JemallocAllocator`, but its
/// allocated bytes follow `AllocatorRounding` and its clock ticks by a fixed step, so two runs
/// give identical traces and tests can assert exact byte counts. Buffers are real memory, so an
/// engine under test can write into them.
public final class CountingAllocator: TensorAllocator {
    public let name = "counting"
    public let recorder: AllocationRecorder
    public let rounding: AllocatorRounding

    public init(rounding: AllocatorRounding = .jemalloc, budgetBytes: Int? = nil,
                persistentRoles: Set<TensorRole> = [.parameter, .optimizerState]) {
        self.rounding = rounding
        self.recorder = AllocationRecorder(clock: TickingClock(), budgetBytes: budgetBytes,
                                           persistentRoles: persistentRoles)
    }

    public func allocate(bytes: Int, role: TensorRole, layerPath: String, name: String, timestep: Int?,
                         phase: TrainingPhase) throws -> TensorBuffer {
        precondition(bytes >= 0, "negative tensor size \(bytes) for \(layerPath)")
        try recorder.admit(requestedBytes: bytes, role: role, layerPath: layerPath, name: name, timestep: timestep,
                           phase: phase)
        let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1),
                                                       alignment: AllocatorRounding.jemallocAlignment)
        return recorder.recordAllocation(
            pointer: pointer, requestedBytes: bytes, allocatedBytes: rounding.roundedBytes(bytes), role: role,
            layerPath: layerPath, name: name, timestep: timestep, phase: phase)
    }

    public func free(_ buffer: TensorBuffer) throws {
        try recorder.recordFree(buffer)
        buffer.pointer.deallocate()
    }
}
