import CKernels
import CLanes
import Planner

/// The engine's CPU parallelism: a fixed number of lanes (`LayerMemoryTable.kernelLanes`, 2), each
/// a thread of `snn_lanes_run` (the caller's and persistent helpers, see CLanes for why not
/// libdispatch). The count is fixed rather than read from the
/// machine because conv gives each lane its own im2col slot, and the planner must declare that
/// workspace without knowing where the plan will run.
///
/// Why lanes instead of OpenBLAS's own threads: the per-sample conv GEMMs are small (N = Hout*Wout,
/// 64 to 1024 columns), and OpenBLAS's thread pool splitting each one gained nothing over one thread
/// (about 90 GFLOP/s either way on the 2-core machine, much of the second core spent in sched_yield).
/// Two lanes running single-threaded GEMMs on different samples keep both cores in the kernel.
public enum KernelLanes {
    public static let count = LayerMemoryTable.kernelLanes

    /// Runs `body(lane)` for lane in 0..<lanes, each exactly once, in parallel when lanes > 1, returning
    /// when all are done: the caller's thread and `snn_lanes_run`'s helpers claim lanes in turn, so
    /// which thread runs a lane is not fixed (a lane is a slot of work, such as conv's im2col slot).
    @inline(__always)
    public static func run(_ lanes: Int, _ body: (Int) -> Void) {
        runItems(lanes, threads: lanes, body)
    }

    /// Runs `body(item)` for item in 0..<items, each exactly once, on at most `threads` threads that
    /// claim items in turn: with several items per thread, a thread that keeps its core takes over
    /// the items of one that lost it to another process.
    @inline(__always)
    public static func runItems(_ items: Int, threads: Int, _ body: (Int) -> Void) {
        if items <= 1 || threads <= 1 {
            for item in 0..<items { body(item) }
            return
        }
        withoutActuallyEscaping(body) { body in
            var closure = body
            withUnsafeMutablePointer(to: &closure) { pointer in
                snn_lanes_run_items(items, threads, { context, item in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(item)
                }, pointer)
            }
        }
    }

    /// Runs `body(item, slot)` for item in 0..<items on at most `slots` threads claiming items in turn, as
    /// `runItems`; `slot` (0..<slots) is a scratch slot no other item holds while `body` runs (conv's
    /// im2col slot), so a sample is claimed like any item and a thread that keeps its core takes over
    /// the samples of one that lost it, where a fixed share per lane waited for it.
    @inline(__always)
    public static func runItemsWithSlots(_ items: Int, slots: Int, _ body: (Int, Int) -> Void) {
        if items <= 1 || slots <= 1 {
            for item in 0..<items { body(item, 0) }
            return
        }
        var mask: UInt = 0
        withUnsafeMutablePointer(to: &mask) { mask in
            runItems(items, threads: slots) { item in
                let slot = snn_slot_claim(mask, slots)
                precondition(slot >= 0, "more items in flight than slots")
                defer { snn_slot_release(mask, slot) }
                body(item, slot)
            }
        }
    }

    /// Chunks per lane in `forEachChunk`. With one chunk per lane, a lane whose thread shares its
    /// core with another process held every region up for its next time slice; with four, the other
    /// thread takes over what it has not reached. A chunk (at least a quarter of `minimumWork`, 8 Ki
    /// elementwise items by default) costs one more claim, tens of nanoseconds.
    static let chunksPerLane = 4

    /// Splits 0..<count into contiguous chunks (multiples of `align` items, `chunksPerLane` per lane)
    /// and runs them on `count` lanes. Work below `minimumWork` (items x `itemCost`) per lane runs on
    /// the caller's thread: a dispatch costs microseconds, more than a small elementwise pass.
    @inline(__always)
    static func forEachChunk(count: Int, itemCost: Int = 1, minimumWork: Int = 1 << 15, align: Int = 16,
                             _ body: (Range<Int>) -> Void) {
        let lanes = min(Self.count, count * itemCost / max(minimumWork, 1), count)
        if lanes <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let pieces = lanes * chunksPerLane
        let per = ((count + pieces - 1) / pieces + align - 1) / align * align
        runItems((count + per - 1) / per, threads: lanes) { chunk in
            body(chunk * per..<min(chunk * per + per, count))
        }
    }
}

// Reductions for the per-channel statistics: 16 running partial sums (one SIMD16 register group),
// combined at the end (in Float by the C kernels, `snn_sum` and its siblings, in the same scheme). In Float this is a blocked sum whose error grows with n / 16 instead of n,
// and it vectorizes (a single scalar accumulator cannot be reordered, so the compiler keeps it scalar).

@inline(__always)
func loadBlock<T: EngineScalar>(_ p: UnsafePointer<T>, _ i: Int) -> SIMD16<T> {
    UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<T>.self)
}

@inline(__always)
func storeBlock<T: EngineScalar>(_ p: UnsafeMutablePointer<T>, _ i: Int, _ value: SIMD16<T>) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: value, as: SIMD16<T>.self)
}

/// Sum of p[0..<n].
@inline(__always)
func blockedSum<T: EngineScalar>(_ p: UnsafePointer<T>, _ n: Int) -> T {
    if T.self == Float.self { return unsafeBitCast(snn_sum(floats(p), n), to: T.self) }
    var acc = SIMD16<T>()
    var i = 0
    while i + 16 <= n { acc += loadBlock(p, i); i += 16 }
    var sum = acc.sum()
    while i < n { sum += p[i]; i += 1 }
    return sum
}

/// Sum of (p[i] - center)^2 over p[0..<n].
@inline(__always)
func blockedSquaredDeviations<T: EngineScalar>(_ p: UnsafePointer<T>, _ n: Int, center: T) -> T {
    if T.self == Float.self {
        return unsafeBitCast(snn_squared_deviations(floats(p), n, unsafeBitCast(center, to: Float.self)), to: T.self)
    }
    var acc = SIMD16<T>()
    let c = SIMD16<T>(repeating: center)
    var i = 0
    while i + 16 <= n {
        let d = loadBlock(p, i) - c
        acc += d * d
        i += 16
    }
    var sum = acc.sum()
    while i < n { let d = p[i] - center; sum += d * d; i += 1 }
    return sum
}

/// (sum of dy, sum of dy * (x - center)) over [0..<n].
@inline(__always)
func blockedGradientSums<T: EngineScalar>(_ dy: UnsafePointer<T>, _ x: UnsafePointer<T>, _ n: Int, center: T) -> (T, T) {
    if T.self == Float.self {
        var sumDy: Float = 0, sumDyCentered: Float = 0
        snn_gradient_sums(floats(dy), floats(x), n, unsafeBitCast(center, to: Float.self), &sumDy, &sumDyCentered)
        return (unsafeBitCast(sumDy, to: T.self), unsafeBitCast(sumDyCentered, to: T.self))
    }
    var a = SIMD16<T>(), b = SIMD16<T>()
    let c = SIMD16<T>(repeating: center)
    var i = 0
    while i + 16 <= n {
        let g = loadBlock(dy, i)
        a += g
        b += g * (loadBlock(x, i) - c)
        i += 16
    }
    var sumDy = a.sum(), sumDyX = b.sum()
    while i < n { sumDy += dy[i]; sumDyX += dy[i] * (x[i] - center); i += 1 }
    return (sumDy, sumDyX)
}
