/// Batch norm at evaluation: normalize with the running statistics training accumulated,
/// y = (x - runningMean) / sqrt(runningVar + eps) * gamma + beta. Nothing is saved or updated.
@_specialize(where T == Float)
public func batchNormInference<T: EngineScalar>(
    _ shape: BatchNormShape, output: UnsafeMutablePointer<T>, input: UnsafePointer<T>, gamma: UnsafePointer<T>,
    beta: UnsafePointer<T>, runningMean: UnsafePointer<T>, runningVar: UnsafePointer<T>,
    epsilon: Double = BatchNormDefaults.epsilon
) {
    let s = shape
    for c in 0..<s.channels {
        let invstd = 1 / (Double(runningVar[c]) + epsilon).squareRoot()
        let scale = gamma[c] * T(invstd)
        let shift = beta[c] - runningMean[c] * scale
        for b in 0..<s.batch {
            let offset = (b * s.channels + c) * s.spatial
            let x = input + offset, y = output + offset
            for i in 0..<s.spatial { y[i] = x[i] * scale + shift }
        }
    }
}
