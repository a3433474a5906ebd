import Profiles

// SpikingJelly's ParametricLIFNode, one timestep per call, with q = sigmoid(w) learned:
//   factor f = x - (v - leak)            h = v + q f        (decay_input)
//   factor f = v - leak                  h = v - q f + x    (no decay_input)
// leak = vReset for a hard reset, 0 for a soft one; fire and reset as `neuronForward`.
// Backward: dh/dx = q (or 1), dh/dv = 1 - q, dh/dq = f (or -f), dq/dw = q (1 - q). Forward saves h
// and f; `smooth` fires the surrogate's primitive instead of a Heaviside step (gradient checks only).

/// q = sigmoid(w): the decay a PLIF's weight gives.
public func plifDecay<T: EngineScalar>(_ w: T) -> T { 1 / (1 + T.exp(-w)) }

@_specialize(where T == Float)
public func plifForward<T: EngineScalar>(
    _ spec: NeuronSpec, q: T, count: Int, smooth: Bool = false, spike: UnsafeMutablePointer<T>, h: UnsafeMutablePointer<T>,
    factor: UnsafeMutablePointer<T>, vNext: UnsafeMutablePointer<T>, input: UnsafePointer<T>, v: UnsafePointer<T>
) {
    switch spec.surrogate {
    case .atan: plifForwardLoop(spec, ATanSurrogate<T>(alpha: T(spec.surrogateAlpha)), q: q, count: count, smooth: smooth,
                                spike: spike, h: h, factor: factor, vNext: vNext, input: input, v: v)
    case .sigmoid: plifForwardLoop(spec, SigmoidSurrogate<T>(alpha: T(spec.surrogateAlpha)), q: q, count: count, smooth: smooth,
                                   spike: spike, h: h, factor: factor, vNext: vNext, input: input, v: v)
    }
}

@inline(__always)
func plifForwardLoop<T: EngineScalar, S: SurrogateFunction>(
    _ spec: NeuronSpec, _ surrogate: S, q: T, count: Int, smooth: Bool, spike: UnsafeMutablePointer<T>, h: UnsafeMutablePointer<T>,
    factor: UnsafeMutablePointer<T>, vNext: UnsafeMutablePointer<T>, input: UnsafePointer<T>, v: UnsafePointer<T>
) where S.Scalar == T {
    let threshold = T(spec.threshold), vReset = T(spec.vReset)
    let leak: T = spec.reset == .hard ? vReset : 0
    let hard = spec.reset == .hard, decayInput = spec.decayInput
    KernelLanes.forEachChunk(count: count) { range in
        for i in range {
            let f = decayInput ? input[i] - (v[i] - leak) : v[i] - leak
            let hi = decayInput ? v[i] + q * f : v[i] - q * f + input[i]
            let s: T = smooth ? surrogate.primitive(hi - threshold) : (hi >= threshold ? 1 : 0)
            factor[i] = f
            h[i] = hi
            spike[i] = s
            vNext[i] = hard ? s * vReset + (1 - s) * hi : hi - s * threshold
        }
    }
}

/// One timestep backward from the saved h and f: dInput and dVPrevious overwritten as in
/// `neuronBackward`; returns dL/dq of this timestep (summed over `count`), which the caller turns
/// into dL/dw with q (1 - q). `dVNext` nil: the last timestep, or the temporal gradient cut (SLTT).
@_specialize(where T == Float)
public func plifBackward<T: EngineScalar>(
    _ spec: NeuronSpec, q: T, count: Int, smooth: Bool = false, dInput: UnsafeMutablePointer<T>,
    dVPrevious: UnsafeMutablePointer<T>?, dSpike: UnsafePointer<T>, dVNext: UnsafePointer<T>?, h: UnsafePointer<T>,
    factor: UnsafePointer<T>
) -> T {
    switch spec.surrogate {
    case .atan: return plifBackwardLoop(spec, ATanSurrogate<T>(alpha: T(spec.surrogateAlpha)), q: q, count: count, smooth: smooth,
                                        dInput: dInput, dVPrevious: dVPrevious, dSpike: dSpike, dVNext: dVNext, h: h, factor: factor)
    case .sigmoid: return plifBackwardLoop(spec, SigmoidSurrogate<T>(alpha: T(spec.surrogateAlpha)), q: q, count: count, smooth: smooth,
                                           dInput: dInput, dVPrevious: dVPrevious, dSpike: dSpike, dVNext: dVNext, h: h, factor: factor)
    }
}

@inline(__always)
func plifBackwardLoop<T: EngineScalar, S: SurrogateFunction>(
    _ spec: NeuronSpec, _ surrogate: S, q: T, count: Int, smooth: Bool, dInput: UnsafeMutablePointer<T>,
    dVPrevious: UnsafeMutablePointer<T>?, dSpike: UnsafePointer<T>, dVNext: UnsafePointer<T>?, h: UnsafePointer<T>,
    factor: UnsafePointer<T>
) -> T where S.Scalar == T {
    let threshold = T(spec.threshold), vReset = T(spec.vReset)
    let hard = spec.reset == .hard, decayInput = spec.decayInput
    let resetSlope: T = spec.detachReset ? 0 : 1
    let dhdq: T = decayInput ? 1 : -1
    // Sequential: the dL/dq sum must not depend on how lanes split the elements (bitwise-repeatable runs).
    var dq: T = 0
    for i in 0..<count {
        let hi = h[i], x = hi - threshold
        let sg = surrogate.derivative(x)
        var dH = dSpike[i] * sg
        if let dVNext {
            let s: T = smooth ? surrogate.primitive(x) : (x >= 0 ? 1 : 0)
            let dVdH = hard ? (1 - s) + resetSlope * (vReset - hi) * sg : 1 - resetSlope * threshold * sg
            dH += dVNext[i] * dVdH
        }
        dq += dH * factor[i] * dhdq
        dVPrevious?[i] = dH * (1 - q)
        dInput[i] = decayInput ? dH * q : dH
    }
    return dq
}
