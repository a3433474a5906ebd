import CJemalloc

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The calling thread's cumulative allocated and deallocated bytes, read through the pointers
/// jemalloc hands out (`thread.allocatedp`, `thread.deallocatedp`): a plain memory load, no
/// call and no allocation, so it can bracket a single `malloc`. Valid only on the thread that
/// created it, which is checked.
public struct JemallocThreadCounters {
    private let allocatedPointer: UnsafeMutablePointer<UInt64>
    private let deallocatedPointer: UnsafeMutablePointer<UInt64>
    private let owner: pthread_t

    /// Looks the pointers up for the calling thread.
    public init() throws {
        let allocatedp = try MallctlMIB("thread.allocatedp").read(UnsafeMutablePointer<UInt64>?.none)
        let deallocatedp = try MallctlMIB("thread.deallocatedp").read(UnsafeMutablePointer<UInt64>?.none)
        guard let allocatedp else { throw AllocatorError.mallctlFailed(name: "thread.allocatedp", code: EINVAL) }
        guard let deallocatedp else { throw AllocatorError.mallctlFailed(name: "thread.deallocatedp", code: EINVAL) }
        allocatedPointer = allocatedp
        deallocatedPointer = deallocatedp
        owner = pthread_self()
    }

    /// Bytes this thread has allocated since it started (size classes, not requests).
    @inline(__always)
    public var allocatedBytes: UInt64 {
        checkThread()
        return allocatedPointer.pointee
    }

    /// Bytes this thread has freed since it started.
    @inline(__always)
    public var deallocatedBytes: UInt64 {
        checkThread()
        return deallocatedPointer.pointee
    }

    @inline(__always)
    private func checkThread() {
        precondition(pthread_equal(owner, pthread_self()) != 0,
                     "JemallocThreadCounters read on a thread other than the one that created it")
    }
}
