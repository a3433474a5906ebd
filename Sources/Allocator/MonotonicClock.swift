#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where event times come from: the real monotonic clock, or a deterministic one in tests.
public protocol MonotonicClock {
    mutating func nowNs() -> UInt64
}

/// CLOCK_MONOTONIC: never jumps with wall-clock changes, and reads through the vDSO (tens of ns).
public struct SystemMonotonicClock: MonotonicClock {
    public init() {}

    public func nowNs() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// A clock that advances by a fixed step at every reading, so that traces from the counting
/// allocator are identical from run to run.
public struct TickingClock: MonotonicClock {
    public private(set) var currentNs: UInt64
    public var stepNs: UInt64

    public init(startNs: UInt64 = 0, stepNs: UInt64 = 1) {
        self.currentNs = startNs
        self.stepNs = stepNs
    }

    public mutating func nowNs() -> UInt64 {
        currentNs += stepNs
        return currentNs
    }
}
