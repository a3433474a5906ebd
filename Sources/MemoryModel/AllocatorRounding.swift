/// How an allocator rounds a request up: predictions can then be made in the bytes an allocator
/// really hands out, not only the bytes asked for.
public enum AllocatorRounding: String, Codable, CaseIterable, Sendable {
    /// Bytes as requested.
    case exact
    /// jemalloc 5.x size classes (four per doubling above 128 bytes, 16-byte quantum below),
    /// for 64-byte aligned requests, as `nallocx(n, MALLOCX_LG_ALIGN(6))` answers.
    case jemalloc
    /// PyTorch's CUDA caching allocator: requests rounded up to 512-byte blocks.
    case cuda

    /// The alignment the engine asks jemalloc for (cache line, and what SIMD loads like).
    public static let jemallocAlignment = 64

    public func roundedBytes(_ requested: Int) -> Int {
        switch self {
        case .exact: return requested
        case .jemalloc: return Self.jemallocUsableSize(requested, alignment: Self.jemallocAlignment)
        case .cuda: return requested == 0 ? 0 : (requested + 511) / 512 * 512
        }
    }

    /// The smallest jemalloc size class that holds `size` bytes and is a multiple of `alignment`
    /// (a power of two no larger than a page, which is what jemalloc does for aligned requests).
    public static func jemallocUsableSize(_ size: Int, alignment: Int = 1) -> Int {
        if size == 0 { return 0 }
        var candidate = max(size, alignment)
        while true {
            let sizeClass = jemallocSizeClass(candidate)
            if sizeClass % alignment == 0 { return sizeClass }
            candidate = sizeClass + 1
        }
    }

    /// jemalloc's size classes with a 16-byte quantum: 8, then multiples of 16 up to 128, then
    /// four classes per power of two (160, 192, 224, 256, 320, ...), pages and huge sizes alike.
    public static func jemallocSizeClass(_ size: Int) -> Int {
        precondition(size > 0)
        if size <= 8 { return 8 }
        if size <= 128 { return (size + 15) / 16 * 16 }
        let lgFloor = Int.bitWidth - 1 - (size - 1).leadingZeroBitCount  // floor(log2(size - 1))
        let delta = 1 << (lgFloor - 2)
        return (size + delta - 1) / delta * delta
    }
}
