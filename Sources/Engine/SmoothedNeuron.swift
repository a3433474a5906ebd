import Profiles

// Whole-network gradient checks need a differentiable network: finite differences of a network
// that fires Heaviside spikes see zero (or infinite) slopes, while backward uses surrogate slopes.
// In the smoothed mode every neuron fires the surrogate's primitive of h - threshold instead, so
// the exact derivative of the forward is what the hand-written backward computes, reset paths
// and the dL/dv chain through time included. Training never uses this mode.

/// One timestep of a smoothed neuron: spike = primitive(h - threshold), otherwise as `neuronForward`.
public func smoothedNeuronForward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, spike: UnsafeMutablePointer<T>, h: UnsafeMutablePointer<T>,
    vNext: UnsafeMutablePointer<T>, input: UnsafePointer<T>, v: UnsafePointer<T>
) {
    switch spec.surrogate {
    case .atan: smoothedForwardLoop(spec, ATanSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, spike: spike, h: h, vNext: vNext, input: input, v: v)
    case .sigmoid: smoothedForwardLoop(spec, SigmoidSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, spike: spike, h: h, vNext: vNext, input: input, v: v)
    }
}

func smoothedForwardLoop<T: EngineScalar, S: SurrogateFunction>(
    _ spec: NeuronSpec, _ surrogate: S, count: Int, spike: UnsafeMutablePointer<T>, h: UnsafeMutablePointer<T>,
    vNext: UnsafeMutablePointer<T>, input: UnsafePointer<T>, v: UnsafePointer<T>
) where S.Scalar == T {
    let charge = NeuronCharge<T>(spec)
    let threshold = T(spec.threshold), vReset = T(spec.vReset)
    for i in 0..<count {
        let hi = charge.decay * v[i] + charge.gain * input[i] + charge.offset
        let s = surrogate.primitive(hi - threshold)
        h[i] = hi
        spike[i] = s
        vNext[i] = spec.reset == .hard ? hi * (1 - s) + vReset * s : hi - s * threshold
    }
}

/// Backward of `smoothedNeuronForward`: as `neuronBackward`, with the smooth spike in the reset's
/// (1 - s) term. `detachReset` drops the reset's dependence on s, as in training.
public func smoothedNeuronBackward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, dInput: UnsafeMutablePointer<T>, dVPrevious: UnsafeMutablePointer<T>?,
    dSpike: UnsafePointer<T>, dVNext: UnsafePointer<T>?, h: UnsafePointer<T>
) {
    switch spec.surrogate {
    case .atan: smoothedBackwardLoop(spec, ATanSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, dInput: dInput, dVPrevious: dVPrevious, dSpike: dSpike, dVNext: dVNext, h: h)
    case .sigmoid: smoothedBackwardLoop(spec, SigmoidSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, dInput: dInput, dVPrevious: dVPrevious, dSpike: dSpike, dVNext: dVNext, h: h)
    }
}

func smoothedBackwardLoop<T: EngineScalar, S: SurrogateFunction>(
    _ spec: NeuronSpec, _ surrogate: S, count: Int, dInput: UnsafeMutablePointer<T>, dVPrevious: UnsafeMutablePointer<T>?,
    dSpike: UnsafePointer<T>, dVNext: UnsafePointer<T>?, h: UnsafePointer<T>
) where S.Scalar == T {
    let charge = NeuronCharge<T>(spec)
    let threshold = T(spec.threshold), vReset = T(spec.vReset)
    let resetSlope: T = spec.detachReset ? 0 : 1
    for i in 0..<count {
        let hi = h[i], x = hi - threshold
        let s = surrogate.primitive(x), sg = surrogate.derivative(x)
        var dH = dSpike[i] * sg
        if let dVNext {
            let dVdH = spec.reset == .hard ? (1 - s) + resetSlope * (vReset - hi) * sg : 1 - resetSlope * threshold * sg
            dH += dVNext[i] * dVdH
        }
        dInput[i] = dH * charge.gain
        dVPrevious?[i] = dH * charge.decay
    }
}

/// The stateless neuron, smoothed: spike = primitive(x - threshold); its backward is `turnOffNeuronBackward`.
public func smoothedTurnOffNeuronForward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, spike: UnsafeMutablePointer<T>, input: UnsafePointer<T>
) {
    let threshold = T(spec.threshold)
    switch spec.surrogate {
    case .atan:
        let sg = ATanSurrogate<T>(alpha: T(spec.surrogateAlpha))
        for i in 0..<count { spike[i] = sg.primitive(input[i] - threshold) }
    case .sigmoid:
        let sg = SigmoidSurrogate<T>(alpha: T(spec.surrogateAlpha))
        for i in 0..<count { spike[i] = sg.primitive(input[i] - threshold) }
    }
}
