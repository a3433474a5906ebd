import CJemalloc
import MemoryModel

/// Tensor buffers from jemalloc: 64-byte aligned (`mallocx` with `MALLOCX_LG_ALIGN(6)`), freed
/// with `sdallocx` and the same flags (sized free skips jemalloc's size lookup). Allocated bytes
/// are `nallocx`, the size class jemalloc really hands out and counts in `thread.allocated`.
public final class JemallocAllocator: TensorAllocator {
    public let name = "jemalloc"
    public let recorder: AllocationRecorder

    /// log2 of `AllocatorRounding.jemallocAlignment`, so predictions and buffers use one alignment.
    public static let lgAlignment = AllocatorRounding.jemallocAlignment.trailingZeroBitCount
    private let flags = snnmem_mallocx_lg_align(UInt32(JemallocAllocator.lgAlignment))

    /// Samples jemalloc at every phase boundary unless `sampling` is false.
    public init(recorder: AllocationRecorder = AllocationRecorder(), sampling: Bool = true) throws {
        self.recorder = recorder
        if sampling { recorder.jemallocStats = try JemallocStats() }
    }

    /// The bytes jemalloc hands out for a request of `bytes` with this allocator's alignment.
    public func allocatedBytes(forRequest bytes: Int) -> Int {
        nallocx(Self.jemallocRequest(bytes), flags)
    }

    public func allocate(bytes: Int, role: TensorRole, layerPath: String, name: String, timestep: Int?,
                         phase: TrainingPhase) throws -> TensorBuffer {
        precondition(bytes >= 0, "negative tensor size \(bytes) for \(layerPath)")
        try recorder.admit(requestedBytes: bytes, role: role, layerPath: layerPath, name: name, timestep: timestep,
                           phase: phase)
        let request = Self.jemallocRequest(bytes)
        guard let pointer = mallocx(request, flags) else {
            throw AllocatorError.systemOutOfMemory(requestedBytes: bytes, layerPath: layerPath, role: role)
        }
        return recorder.recordAllocation(
            pointer: pointer, requestedBytes: bytes, allocatedBytes: nallocx(request, flags), role: role,
            layerPath: layerPath, name: name, timestep: timestep, phase: phase)
    }

    public func free(_ buffer: TensorBuffer) throws {
        try recorder.recordFree(buffer)
        sdallocx(buffer.pointer, Self.jemallocRequest(buffer.requestedBytes), flags)
    }

    /// Makes jemalloc keep the pages of freed blocks for reuse instead of handing them back to the
    /// system: `dirty_decay_ms` = -1 for every arena that exists and for arenas created later (among
    /// them the arena for blocks of 8 MiB and more, which jemalloc otherwise empties at every free).
    ///
    /// A training step frees and reallocates the same buffers every timestep and every step. With
    /// jemalloc's defaults their pages were returned and faulted in again: about 93,000 page faults
    /// (370 MB zeroed by the kernel) per CIFARNet step, a fifth of the step's time. With this the
    /// process keeps its high-water mark of pages (the planned peak) for the run. Tracked bytes,
    /// size classes and the thread counters are unchanged; only `stats.resident` stays higher.
    /// Process-wide: call it once where a run starts (the `run` and `train` commands do).
    public static func retainFreedPages() throws {
        var never = -1
        let size = MemoryLayout<Int>.size
        var code = mallctl("arenas.dirty_decay_ms", nil, nil, &never, size)
        guard code == 0 else { throw AllocatorError.mallctlFailed(name: "arenas.dirty_decay_ms", code: code) }
        var arenas: UInt32 = 0
        var arenasSize = MemoryLayout<UInt32>.size
        code = mallctl("arenas.narenas", &arenas, &arenasSize, nil, 0)
        guard code == 0 else { throw AllocatorError.mallctlFailed(name: "arenas.narenas", code: code) }
        for index in 0..<Int(arenas) {
            // Arenas not yet initialized answer EFAULT; they take the default set above when created.
            _ = mallctl("arena.\(index).dirty_decay_ms", nil, nil, &never, size)
        }
    }

    /// jemalloc leaves `mallocx(0)` undefined; an empty tensor gets the smallest block instead.
    @inline(__always)
    static func jemallocRequest(_ bytes: Int) -> Int { max(bytes, 1) }
}
