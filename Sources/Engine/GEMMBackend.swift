import CGemm
import COpenBLAS
import Foundation

/// Which single-precision GEMM the Float kernels call: snnmem's AVX-512 SGEMM (`snn_sgemm`, in
/// the CGemm target) where the processor has AVX-512 and the product fits its tiles, OpenBLAS's
/// `cblas_sgemm` elsewhere. Double (the finite-difference checks) always runs OpenBLAS's dgemm.
///
/// Why two: these machines pin OpenBLAS to its Haswell (AVX2) kernels through OPENBLAS_CORETYPE,
/// which halves the arithmetic rate of a processor with full-width 512-bit FMAs. The environment
/// variable `SNNMEM_GEMM=openblas` selects OpenBLAS anyway, for side-by-side measurements.
public enum GEMMBackend: String, CaseIterable, Sendable {
    case avx512
    case openblas

    /// Whether this processor and OS can run `snn_sgemm`.
    public static let avx512Supported = snn_sgemm_supported()

    /// The backend chosen at start: `SNNMEM_GEMM` if set to a supported name, else the fastest here.
    public static let preferred: GEMMBackend = {
        let requested = ProcessInfo.processInfo.environment["SNNMEM_GEMM"].flatMap(GEMMBackend.init(rawValue:))
        if requested == .openblas || !avx512Supported { return .openblas }
        return .avx512
    }()

    /// The backend the Float GEMM calls now. Benchmarks and tests switch it with `withBackend`.
    nonisolated(unsafe) public private(set) static var current: GEMMBackend = {
        configureOpenBLAS(for: preferred)
        return preferred
    }()

    /// OpenBLAS's own thread count when the process started (its default: one per core).
    private static let openBLASDefaultThreads = openblas_get_num_threads()

    /// With the AVX-512 GEMM, OpenBLAS serves only small products (`fitsTiles`), and one thread
    /// does: a threaded OpenBLAS call leaves its pool spinning in sched_yield for a while after,
    /// on the cores the kernel lanes need next (measured: about 2% of a CIFARNet step).
    private static func configureOpenBLAS(for backend: GEMMBackend) {
        openblas_set_num_threads(backend == .avx512 ? 1 : openBLASDefaultThreads)
    }

    /// Whether `backend` can run on this machine.
    public var isSupported: Bool { self == .openblas || Self.avx512Supported }

    /// Runs `body` with `backend` selected, restoring the previous one after. Not for concurrent use:
    /// the selection is process-wide.
    public static func withBackend<R>(_ backend: GEMMBackend, _ body: () throws -> R) rethrows -> R {
        precondition(backend.isSupported, "the \(backend.rawValue) GEMM does not run on this processor")
        let previous = current
        current = backend
        configureOpenBLAS(for: backend)
        defer {
            current = previous
            configureOpenBLAS(for: previous)
        }
        return try body()
    }

    /// Threads one AVX-512 GEMM call may use: 2 (the kernel lanes) when the caller runs alone, 1
    /// inside `withOneThreadPerCall`, where each lane already runs its own GEMMs.
    nonisolated(unsafe) private static var threadsPerCall = KernelLanes.count

    /// Runs `body` with each GEMM call limited to one thread, OpenBLAS's and snnmem's own (so that
    /// lanes calling GEMMs at the same time do not contend for the cores), restoring both after.
    /// Reading `current` first chooses the backend, which sets OpenBLAS's count; saved before that
    /// choice, the restore would undo it (measured: OpenBLAS's pool then spun in sched_yield beside
    /// the lanes all run long).
    @inline(__always)
    public static func withOneThreadPerCall<R>(_ body: () -> R) -> R {
        _ = current
        let previousBLAS = openblas_get_num_threads(), previousOwn = threadsPerCall
        if previousBLAS > 1 { openblas_set_num_threads(1) }
        threadsPerCall = 1
        defer {
            if previousBLAS > 1 { openblas_set_num_threads(previousBLAS) }
            threadsPerCall = previousOwn
        }
        return body()
    }

    /// Whether a product suits the AVX-512 GEMM's 8 x 32 register tiles: at least a few tiles'
    /// work, at least 3/4 of the tiles' area used (a 4x4 feature map fills half a 32-wide tile row,
    /// a depthwise conv's one-row GEMMs an eighth of the tile), and a K long enough (16) to
    /// amortize each tile's load and store of C. Measured on T-RevSNN's narrow and depthwise convs,
    /// which run faster on OpenBLAS; CIFARNet's and the VGGs' convs all fit.
    @inline(__always)
    public static func fitsTiles(m: Int, n: Int, k: Int) -> Bool {
        guard k >= 16, m * n * k >= 1 << 15 else { return false }
        let tiledArea = (m + 7) / 8 * 8 * ((n + 31) / 32 * 32)
        return 4 * m * n >= 3 * tiledArea
    }

    /// Below this many multiply-adds a split is not worth a fork-join (microseconds).
    static let splitMultiplyAdds = 1 << 21

    /// Row-major C = alpha * op(A) * op(B) + beta * C through the current backend.
    @inline(__always)
    static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                      alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        switch current {
        case .avx512 where fitsTiles(m: m, n: n, k: k):
            guard threadsPerCall > 1, m * n * k >= splitMultiplyAdds, max(m, n) >= 64 else {
                snn_sgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
                return
            }
            // Alone on the machine (a batch of one, a linear layer): split C between the threads
            // along its longer side, at a multiple of the micro-tile (8 rows, 32 columns).
            let parts = threadsPerCall
            if n >= m {
                let step = (n / parts + 31) / 32 * 32
                KernelLanes.run(parts) { part in
                    let first = min(part * step, n), count = min(step, n - first)
                    guard count > 0 else { return }
                    snn_sgemm(transposeA, transposeB, m, count, k, alpha, a, lda,
                              transposeB ? b + first * ldb : b + first, ldb, beta, c + first, ldc)
                }
            } else {
                let step = (m / parts + 7) / 8 * 8
                KernelLanes.run(parts) { part in
                    let first = min(part * step, m), count = min(step, m - first)
                    guard count > 0 else { return }
                    snn_sgemm(transposeA, transposeB, count, n, k, alpha, transposeA ? a + first : a + first * lda, lda,
                              b, ldb, beta, c + first * ldc, ldc)
                }
            }
        case .avx512, .openblas:
            // Products the 8 x 32 tiles fit badly (see `fitsTiles`) run on OpenBLAS.
            cblas_sgemm(CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB),
                        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
        }
    }
}
