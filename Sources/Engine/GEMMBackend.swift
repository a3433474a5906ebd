import CGemm
import COpenBLAS
import Foundation

/// Which single-precision GEMM the Float kernels call: snnmem's AVX-512 SGEMM (`snn_sgemm`, in
/// the CGemm target) where the processor has AVX-512, OpenBLAS's `cblas_sgemm` elsewhere. Double
/// (the finite-difference checks) always runs OpenBLAS's dgemm.
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
    nonisolated(unsafe) public private(set) static var current: GEMMBackend = preferred

    /// Whether `backend` can run on this machine.
    public var isSupported: Bool { self == .openblas || Self.avx512Supported }

    /// Runs `body` with `backend` selected, restoring the previous one after. Not for concurrent use:
    /// the selection is process-wide.
    public static func withBackend<R>(_ backend: GEMMBackend, _ body: () throws -> R) rethrows -> R {
        precondition(backend.isSupported, "the \(backend.rawValue) GEMM does not run on this processor")
        let previous = current
        current = backend
        defer { current = previous }
        return try body()
    }

    /// Row-major C = alpha * op(A) * op(B) + beta * C through the current backend.
    @inline(__always)
    static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                      alpha: Float, a: UnsafePointer<Float>, lda: Int,
                      b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        switch current {
        case .avx512:
            snn_sgemm(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        case .openblas:
            cblas_sgemm(CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB),
                        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
        }
    }
}
