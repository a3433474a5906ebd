// Elementwise helpers for residual adds, reversible blocks (y = x + f, x = y - f) and gradient sums.
// Output buffers may be one of the inputs: each element is read before it is written.

/// output = a + b.
@_specialize(where T == Float)
public func add<T: EngineScalar>(count: Int, output: UnsafeMutablePointer<T>, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>) {
    for i in 0..<count { output[i] = a[i] + b[i] }
}

/// output = a - b.
@_specialize(where T == Float)
public func subtract<T: EngineScalar>(count: Int, output: UnsafeMutablePointer<T>, _ a: UnsafePointer<T>, _ b: UnsafePointer<T>) {
    for i in 0..<count { output[i] = a[i] - b[i] }
}

/// y += alpha * x (BLAS's axpy; alpha = 1 accumulates a gradient from a second consumer).
@_specialize(where T == Float)
public func axpy<T: EngineScalar>(count: Int, alpha: T, x: UnsafePointer<T>, y: UnsafeMutablePointer<T>) {
    for i in 0..<count { y[i] += alpha * x[i] }
}

/// buffer = value.
@_specialize(where T == Float)
public func fill<T: EngineScalar>(count: Int, _ buffer: UnsafeMutablePointer<T>, value: T) {
    buffer.update(repeating: value, count: count)
}
