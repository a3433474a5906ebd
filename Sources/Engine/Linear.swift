/// The dimensions of a fully connected layer call: input [batch, inFeatures] -> output [batch, outFeatures].
public struct LinearShape: Hashable, Sendable {
    public var batch: Int
    public var inFeatures: Int
    public var outFeatures: Int

    public init(batch: Int, inFeatures: Int, outFeatures: Int) {
        precondition(batch > 0 && inFeatures > 0 && outFeatures > 0)
        self.batch = batch
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    public var weightCount: Int { outFeatures * inFeatures }
}

/// output = input * weight^T (+ bias); weight is [outFeatures, inFeatures] (PyTorch's layout).
@_specialize(where T == Float)
public func linearForward<T: EngineScalar>(
    _ shape: LinearShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>,
    weight: UnsafePointer<T>, bias: UnsafePointer<T>?
) {
    let s = shape
    T.gemm(transposeA: false, transposeB: true, m: s.batch, n: s.outFeatures, k: s.inFeatures,
           alpha: 1, a: input, lda: s.inFeatures, b: weight, ldb: s.inFeatures,
           beta: 0, c: output, ldc: s.outFeatures)
    if let bias {
        for b in 0..<s.batch {
            let row = output + b * s.outFeatures
            for o in 0..<s.outFeatures { row[o] += bias[o] }
        }
    }
}

/// dWeight += dOutput^T * input, dBias += column sums of dOutput, dInput = dOutput * weight
/// (overwritten; nil when the input needs no gradient).
@_specialize(where T == Float)
public func linearBackward<T: EngineScalar>(
    _ shape: LinearShape, dInput: UnsafeMutablePointer<T>?, dWeight: UnsafeMutablePointer<T>,
    dBias: UnsafeMutablePointer<T>?, dOutput: UnsafePointer<T>, input: UnsafePointer<T>, weight: UnsafePointer<T>
) {
    let s = shape
    T.gemm(transposeA: true, transposeB: false, m: s.outFeatures, n: s.inFeatures, k: s.batch,
           alpha: 1, a: dOutput, lda: s.outFeatures, b: input, ldb: s.inFeatures,
           beta: 1, c: dWeight, ldc: s.inFeatures)
    if let dBias {
        for b in 0..<s.batch {
            let row = dOutput + b * s.outFeatures
            for o in 0..<s.outFeatures { dBias[o] += row[o] }
        }
    }
    if let dInput {
        T.gemm(transposeA: false, transposeB: false, m: s.batch, n: s.inFeatures, k: s.outFeatures,
               alpha: 1, a: dOutput, lda: s.outFeatures, b: weight, ldb: s.inFeatures,
               beta: 0, c: dInput, ldc: s.inFeatures)
    }
}
