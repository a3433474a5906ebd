import COpenBLAS
import Dispatch
import Planner

/// The engine's CPU parallelism: a fixed number of lanes (`LayerMemoryTable.kernelLanes`, 2), each
/// a thread of `DispatchQueue.concurrentPerform`. The count is fixed rather than read from the
/// machine because conv gives each lane its own im2col slot, and the planner must declare that
/// workspace without knowing where the plan will run.
///
/// Why lanes instead of OpenBLAS's own threads: the per-sample conv GEMMs are small (N = Hout*Wout,
/// 64 to 1024 columns), and OpenBLAS's thread pool splitting each one gained nothing over one thread
/// (about 90 GFLOP/s either way on the 2-core machine, much of the second core spent in sched_yield).
/// Two lanes running single-threaded GEMMs on different samples keep both cores in the kernel.
enum KernelLanes {
    static let count = LayerMemoryTable.kernelLanes

    /// Runs `body(lane)` for lane in 0..<lanes, in parallel when lanes > 1, returning when all are done.
    @inline(__always)
    static func run(_ lanes: Int, _ body: (Int) -> Void) {
        if lanes <= 1 {
            body(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: lanes, execute: body)
        }
    }

    /// Runs `body` with OpenBLAS limited to one thread per call (so that lanes calling GEMMs at the
    /// same time do not contend for its pool), restoring the previous thread count after.
    @inline(__always)
    static func withSingleThreadedGEMM<R>(_ body: () -> R) -> R {
        let previous = openblas_get_num_threads()
        if previous > 1 { openblas_set_num_threads(1) }
        defer { if previous > 1 { openblas_set_num_threads(previous) } }
        return body()
    }

    /// Splits 0..<count into `lanes` contiguous chunks (multiples of `align`) and runs them in
    /// parallel; small counts run on the caller's thread (dispatch costs microseconds).
    @inline(__always)
    static func forEachChunk(count: Int, minimumPerLane: Int = 1 << 15, align: Int = 64,
                             _ body: (Range<Int>) -> Void) {
        let lanes = min(Self.count, count / max(minimumPerLane, 1))
        if lanes <= 1 {
            body(0..<count)
            return
        }
        let per = ((count + lanes - 1) / lanes + align - 1) / align * align
        DispatchQueue.concurrentPerform(iterations: lanes) { lane in
            let start = min(lane * per, count), end = min(start + per, count)
            if start < end { body(start..<end) }
        }
    }
}
