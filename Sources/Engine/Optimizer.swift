import Profiles

// Optimizer steps on one flat parameter tensor with its gradient and state, in PyTorch's semantics.
// State buffers start zeroed (the caller allocates them with the parameters); the gradient is read,
// never modified, and the weight-decayed gradient exists only in registers.

/// torch.optim.SGD (dampening 0, no Nesterov): g = grad + wd * p; buf = momentum * buf + g; p -= lr * buf.
/// PyTorch sets buf = g at the first step, which is what the update gives from a zeroed buffer.
/// With momentum 0 there is no buffer (pass nil): p -= lr * g.
@_specialize(where T == Float)
public func sgdStep<T: EngineScalar>(
    _ spec: OptimizerSpec, count: Int, parameter: UnsafeMutablePointer<T>, gradient: UnsafePointer<T>,
    momentumBuffer: UnsafeMutablePointer<T>?
) {
    precondition(spec.type == .sgd)
    let lr = T(spec.learningRate), wd = T(spec.weightDecay), momentum = T(spec.momentum)
    if spec.momentum != 0 {
        guard let buffer = momentumBuffer else { preconditionFailure("SGD with momentum needs its momentum buffer") }
        for i in 0..<count {
            let g = gradient[i] + wd * parameter[i]
            let m = momentum * buffer[i] + g
            buffer[i] = m
            parameter[i] -= lr * m
        }
    } else {
        for i in 0..<count { parameter[i] -= lr * (gradient[i] + wd * parameter[i]) }
    }
}

/// torch.optim.Adam (weight decay added to the gradient, not decoupled; no amsgrad), step counted from 1:
///   g = grad + wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
///   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
@_specialize(where T == Float)
public func adamStep<T: EngineScalar>(
    _ spec: OptimizerSpec, step: Int, count: Int, parameter: UnsafeMutablePointer<T>, gradient: UnsafePointer<T>,
    firstMoment: UnsafeMutablePointer<T>, secondMoment: UnsafeMutablePointer<T>
) {
    precondition(spec.type == .adam)
    precondition(step >= 1, "Adam counts steps from 1")
    let b1 = T(spec.beta1), b2 = T(spec.beta2), wd = T(spec.weightDecay), eps = T(spec.epsilon)
    // Bias corrections in Double: b^t for t in the thousands is where float32 pow would drift.
    var b1t = 1.0, b2t = 1.0
    for _ in 0..<step { b1t *= spec.beta1; b2t *= spec.beta2 }
    let stepSize = T(spec.learningRate / (1 - b1t))
    let sqrtCorrection2 = T((1 - b2t).squareRoot())
    for i in 0..<count {
        let g = gradient[i] + wd * parameter[i]
        let m = b1 * firstMoment[i] + (1 - b1) * g
        let v = b2 * secondMoment[i] + (1 - b2) * g * g
        firstMoment[i] = m
        secondMoment[i] = v
        parameter[i] -= stepSize * m / (v.squareRoot() / sqrtCorrection2 + eps)
    }
}
