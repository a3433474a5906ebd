/// One reading of jemalloc's counters, in bytes.
public struct JemallocSnapshot: Hashable, Codable, Sendable {
    /// Bytes in blocks handed to the application (process-wide; small blocks in thread caches
    /// count as allocated only after a flush).
    public var allocatedBytes: Int
    /// Bytes in active pages (a multiple of the page size, at least `allocatedBytes`).
    public var activeBytes: Int
    /// Bytes physically resident in data pages mapped by the allocator.
    public var residentBytes: Int
    public var threadAllocatedBytes: UInt64
    public var threadDeallocatedBytes: UInt64
    /// This thread's peak of (allocated - deallocated) since the last peak reset.
    public var threadPeakBytes: UInt64

    public init(allocatedBytes: Int, activeBytes: Int, residentBytes: Int, threadAllocatedBytes: UInt64,
                threadDeallocatedBytes: UInt64, threadPeakBytes: UInt64) {
        self.allocatedBytes = allocatedBytes
        self.activeBytes = activeBytes
        self.residentBytes = residentBytes
        self.threadAllocatedBytes = threadAllocatedBytes
        self.threadDeallocatedBytes = threadDeallocatedBytes
        self.threadPeakBytes = threadPeakBytes
    }
}
