import COpenBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The element type of the kernels. Training runs in Float; every kernel is generic so that the
/// finite-difference checks can run the very same code in Double, where central differences are
/// accurate to about 1e-9 and a wrong derivative cannot hide behind float32 rounding.
///
/// Swift's standard library has no generic `exp`/`log`/`atan`, so the protocol asks for them and
/// the two conformances forward to libm; the GEMM forwards to `GEMMBackend` (AVX-512 or OpenBLAS)
/// in Float and to OpenBLAS's `dgemm` in Double.
/// `SIMDScalar` lets the statistics kernels sum in SIMD16<T> registers (Codable is what it implies).
public protocol EngineScalar: BinaryFloatingPoint, SIMDScalar, Codable, Sendable {
    /// Row-major C = alpha * op(A) * op(B) + beta * C, with op(A) M x K, op(B) K x N, C M x N.
    static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                     alpha: Self, a: UnsafePointer<Self>, lda: Int,
                     b: UnsafePointer<Self>, ldb: Int,
                     beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
    static func atan(_ x: Self) -> Self
}

@inline(__always)
func cblasTranspose(_ transpose: Bool) -> CBLAS_TRANSPOSE {
    transpose ? CblasTrans : CblasNoTrans
}

extension Float: EngineScalar {
    @inline(__always)
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            alpha: Float, a: UnsafePointer<Float>, lda: Int,
                            b: UnsafePointer<Float>, ldb: Int,
                            beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        GEMMBackend.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                          b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    }
    @inline(__always) public static func exp(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func log(_ x: Float) -> Float { logf(x) }
    @inline(__always) public static func atan(_ x: Float) -> Float { atanf(x) }
}

extension Double: EngineScalar {
    @inline(__always)
    public static func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                            alpha: Double, a: UnsafePointer<Double>, lda: Int,
                            b: UnsafePointer<Double>, ldb: Int,
                            beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int) {
        cblas_dgemm(CblasRowMajor, cblasTranspose(transposeA), cblasTranspose(transposeB),
                    blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
    @inline(__always) public static func exp(_ x: Double) -> Double { Glibc.exp(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { Glibc.log(x) }
    @inline(__always) public static func atan(_ x: Double) -> Double { Glibc.atan(x) }
}
