import CJemalloc
import Glibc
import MemoryModel

extension TensorAllocator {
    /// A buffer kept for the run that kernels stream row by row (the spike products' weight panels):
    /// page-aligned where jemalloc hands out the same size class either way (blocks past its small
    /// classes), so the plan's jemalloc rounding still holds; otherwise as every tensor.
    ///
    /// Why: jemalloc places a large block aligned below a page at a random multiple of 64 bytes into
    /// its first page (cache-oblivious placement), so a panel's 2 KiB rows then cross page boundaries,
    /// where the hardware prefetchers stop. The panels mapped by hand before were page-aligned; through
    /// jemalloc at 64 bytes VGG-11's step measured 2-4% slower.
    public func allocatePageAligned(bytes: Int, role: TensorRole, layerPath: String, name: String, timestep: Int?,
                                    phase: TrainingPhase) throws -> TensorBuffer {
        guard let jemalloc = self as? JemallocAllocator else {
            return try allocate(bytes: bytes, role: role, layerPath: layerPath, name: name, timestep: timestep, phase: phase)
        }
        return try jemalloc.allocatePageAligned(bytes: bytes, role: role, layerPath: layerPath, name: name, timestep: timestep, phase: phase)
    }
}

extension JemallocAllocator {
    /// `MALLOCX_LG_ALIGN` of the page size.
    static let pageFlags = snnmem_mallocx_lg_align(UInt32(Int(sysconf(Int32(_SC_PAGESIZE))).trailingZeroBitCount))

    fileprivate func allocatePageAligned(bytes: Int, role: TensorRole, layerPath: String, name: String, timestep: Int?,
                                         phase: TrainingPhase) throws -> TensorBuffer {
        let request = Self.jemallocRequest(bytes)
        let allocated = nallocx(request, Self.pageFlags)
        // A small class would round up to whole pages: not what the plan counts, so 64 bytes as usual.
        // A large one is the same class, and `free`'s sized deallocation at 64 bytes names it alike.
        guard allocated == allocatedBytes(forRequest: bytes) else {
            return try allocate(bytes: bytes, role: role, layerPath: layerPath, name: name, timestep: timestep, phase: phase)
        }
        try recorder.admit(requestedBytes: bytes, role: role, layerPath: layerPath, name: name, timestep: timestep, phase: phase)
        guard let pointer = mallocx(request, Self.pageFlags) else {
            throw AllocatorError.systemOutOfMemory(requestedBytes: bytes, layerPath: layerPath, role: role)
        }
        return recorder.recordAllocation(pointer: pointer, requestedBytes: bytes, allocatedBytes: allocated, role: role,
                                         layerPath: layerPath, name: name, timestep: timestep, phase: phase)
    }
}
