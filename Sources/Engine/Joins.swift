// The joins of a `branches` block: forward/backward pairs over flat buffers. A sum join uses
// `add`/`axpy` (Elementwise.swift). Outputs never alias inputs here.

/// SEW's AND: output = a * b.
@_specialize(where T == Float)
public func andJoinForward<T: EngineScalar>(count: Int, output: UnsafeMutablePointer<T>, a: UnsafePointer<T>, b: UnsafePointer<T>) {
    for i in 0..<count { output[i] = a[i] * b[i] }
}

/// dA = dY * b, dB = dY * a.
@_specialize(where T == Float)
public func andJoinBackward<T: EngineScalar>(count: Int, dA: UnsafeMutablePointer<T>, dB: UnsafeMutablePointer<T>,
                                             dOutput: UnsafePointer<T>, a: UnsafePointer<T>, b: UnsafePointer<T>) {
    for i in 0..<count {
        dA[i] = dOutput[i] * b[i]
        dB[i] = dOutput[i] * a[i]
    }
}

/// SEW's IAND: output = (1 - a) * b (b passes where a did not spike).
@_specialize(where T == Float)
public func iandJoinForward<T: EngineScalar>(count: Int, output: UnsafeMutablePointer<T>, a: UnsafePointer<T>, b: UnsafePointer<T>) {
    for i in 0..<count { output[i] = (1 - a[i]) * b[i] }
}

/// dA = -dY * b, dB = dY * (1 - a).
@_specialize(where T == Float)
public func iandJoinBackward<T: EngineScalar>(count: Int, dA: UnsafeMutablePointer<T>, dB: UnsafeMutablePointer<T>,
                                              dOutput: UnsafePointer<T>, a: UnsafePointer<T>, b: UnsafePointer<T>) {
    for i in 0..<count {
        dA[i] = -dOutput[i] * b[i]
        dB[i] = dOutput[i] * (1 - a[i])
    }
}

/// Concatenation along channels of per-sample [C_i, H, W] parts into [sum C_i, H, W], `samples`
/// samples each. `partSizes` are C_i * H * W.
@_specialize(where T == Float)
public func concatForward<T: EngineScalar>(samples: Int, partSizes: [Int], output: UnsafeMutablePointer<T>,
                                           parts: [UnsafePointer<T>]) {
    let total = partSizes.reduce(0, +)
    for s in 0..<samples {
        var offset = s * total
        for (part, size) in zip(parts, partSizes) {
            (output + offset).update(from: part + s * size, count: size)
            offset += size
        }
    }
}

/// The inverse split: each part's gradient is its channels of dY.
@_specialize(where T == Float)
public func concatBackward<T: EngineScalar>(samples: Int, partSizes: [Int], dParts: [UnsafeMutablePointer<T>],
                                            dOutput: UnsafePointer<T>) {
    let total = partSizes.reduce(0, +)
    for s in 0..<samples {
        var offset = s * total
        for (dPart, size) in zip(dParts, partSizes) {
            (dPart + s * size).update(from: dOutput + offset, count: size)
            offset += size
        }
    }
}
