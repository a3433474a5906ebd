import CKernels

/// The C elementwise kernels (`Sources/CKernels`) behind the Float instances of the generic kernels:
/// compiled for AVX-512, AVX2 and the baseline, one chosen at run time. Double (the finite-difference
/// checks) keeps the Swift loops, which compute the same values in the same order.
public enum ElementwiseKernels {
    /// The instruction set the Float elementwise kernels run on now: "avx512", "avx2" or "baseline".
    public static var level: String { String(cString: snn_kernels_level_name(snn_kernels_current_level())) }
}

/// A generic kernel's buffer as Float, for the C kernels; only called where T is Float.
@inline(__always)
func floats<T>(_ p: UnsafePointer<T>) -> UnsafePointer<Float> {
    UnsafeRawPointer(p).assumingMemoryBound(to: Float.self)
}

@inline(__always)
func floats<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: Float.self)
}

/// dst[0..<n] += src[0..<n] (col2im's contiguous rows).
@inline(__always)
func addTo<T: EngineScalar>(_ n: Int, _ src: UnsafePointer<T>, _ dst: UnsafeMutablePointer<T>) {
    if T.self == Float.self {
        snn_add_to(n, floats(src), floats(dst))
        return
    }
    for i in 0..<n { dst[i] += src[i] }
}
