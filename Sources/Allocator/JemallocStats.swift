import CJemalloc

/// jemalloc's own view of memory, to compare with what the recorder tracked: process-wide
/// `stats.allocated/active/resident` (refreshed through `epoch`, which they only change after)
/// and the calling thread's counters and peak. MIBs are looked up once, at init; every failed
/// `mallctl` is thrown as `AllocatorError.mallctlFailed`.
public struct JemallocStats {
    /// Reset `thread.peak` after each `read()`, so that each sample's peak covers one phase.
    public var resetsThreadPeakOnRead: Bool
    public let threadCounters: JemallocThreadCounters

    private let epoch: MallctlMIB
    private let statsAllocated: MallctlMIB
    private let statsActive: MallctlMIB
    private let statsResident: MallctlMIB
    private let threadPeakRead: MallctlMIB
    private let threadPeakReset: MallctlMIB
    private let threadTcacheFlush: MallctlMIB

    /// Thread counters belong to the calling thread: create and read the stats on one thread.
    public init(resetsThreadPeakOnRead: Bool = true) throws {
        self.resetsThreadPeakOnRead = resetsThreadPeakOnRead
        epoch = try MallctlMIB("epoch")
        statsAllocated = try MallctlMIB("stats.allocated")
        statsActive = try MallctlMIB("stats.active")
        statsResident = try MallctlMIB("stats.resident")
        threadPeakRead = try MallctlMIB("thread.peak.read")
        threadPeakReset = try MallctlMIB("thread.peak.reset")
        threadTcacheFlush = try MallctlMIB("thread.tcache.flush")
        threadCounters = try JemallocThreadCounters()
    }

    /// Refreshes `epoch`, then reads everything at once.
    public func read() throws -> JemallocSnapshot {
        _ = try epoch.write(UInt64(1))
        let snapshot = JemallocSnapshot(
            allocatedBytes: try statsAllocated.read(Int(0)),
            activeBytes: try statsActive.read(Int(0)),
            residentBytes: try statsResident.read(Int(0)),
            threadAllocatedBytes: threadCounters.allocatedBytes,
            threadDeallocatedBytes: threadCounters.deallocatedBytes,
            threadPeakBytes: try readThreadPeak())
        if resetsThreadPeakOnRead { try resetThreadPeak() }
        return snapshot
    }

    /// The highest (allocated - deallocated) bytes of this thread since the last reset. jemalloc
    /// documents it as approximate: it aims to be within about 100 KB.
    public func readThreadPeak() throws -> UInt64 {
        try threadPeakRead.read(UInt64(0))
    }

    public func resetThreadPeak() throws {
        try threadPeakReset.trigger()
    }

    /// Reads any size_t control by name ("arenas.page", "stats.mapped"), looked up on every call:
    /// for occasional diagnostics, not for per-allocation use.
    public static func readSize(_ name: String) throws -> Int {
        try MallctlMIB(name).read(Int(0))
    }

    /// Returns this thread's cached small blocks to the arenas, so `stats.allocated` sees them.
    public func flushThreadCache() throws {
        try threadTcacheFlush.trigger()
    }
}
