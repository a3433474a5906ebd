import Profiles

// Adaptive LIF (Bellec et al. 2018, the LSNN's adaptive threshold), one timestep per call:
//   charge     h  = v + (x - (v - leak)) / tau                 (LIF's; leak = vReset hard, 0 soft)
//   threshold  θ  = threshold + beta b                         (b: the adaptation before this step)
//   fire       s  = Heaviside(h - θ)
//   reset      v' = h (1 - s) + vReset s  (hard)    v' = h - s θ  (soft: by the adapted threshold)
//   adapt      b' = rho b + (1 - rho) s                        (b_t = rho b_{t-1} + (1 - rho) s_{t-1})
// Forward saves h and b; backward recomputes θ and s from them. The gradient flows through the
// adaptation (s -> b' -> θ of the next timesteps), as in BPTT of an LSNN; `detachReset` detaches
// only the reset's s, as SpikingJelly's. `smooth` fires the surrogate's primitive instead of a
// Heaviside step (gradient checks only).

/// One timestep forward over `count` neurons. `state` holds v (count elements) then b (count
/// elements), both updated in place; `h` and `b` receive what backward needs.
@_specialize(where T == Float)
public func alifForward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, smooth: Bool = false, spike: UnsafeMutablePointer<T>, h: UnsafeMutablePointer<T>,
    b: UnsafeMutablePointer<T>, state: UnsafeMutablePointer<T>, input: UnsafePointer<T>
) {
    switch spec.surrogate {
    case .atan: alifForwardLoop(spec, ATanSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, smooth: smooth,
                                spike: spike, h: h, b: b, state: state, input: input)
    case .sigmoid: alifForwardLoop(spec, SigmoidSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, smooth: smooth,
                                   spike: spike, h: h, b: b, state: state, input: input)
    }
}

@inline(__always)
func alifForwardLoop<T: EngineScalar, S: SurrogateFunction>(
    _ spec: NeuronSpec, _ surrogate: S, count: Int, smooth: Bool, spike: UnsafeMutablePointer<T>, h: UnsafeMutablePointer<T>,
    b: UnsafeMutablePointer<T>, state: UnsafeMutablePointer<T>, input: UnsafePointer<T>
) where S.Scalar == T {
    let charge = NeuronCharge<T>(spec)
    let threshold = T(spec.threshold), vReset = T(spec.vReset), beta = T(spec.beta), rho = T(spec.rho)
    let hard = spec.reset == .hard
    let v = state, adaptation = state + count
    KernelLanes.forEachChunk(count: count) { range in
        for i in range {
            let hi = charge.decay * v[i] + charge.gain * input[i] + charge.offset
            let bi = adaptation[i]
            let theta = threshold + beta * bi
            let s: T = smooth ? surrogate.primitive(hi - theta) : (hi >= theta ? 1 : 0)
            h[i] = hi
            b[i] = bi
            spike[i] = s
            v[i] = hard ? hi * (1 - s) + vReset * s : hi - s * theta
            adaptation[i] = rho * bi + (1 - rho) * s
        }
    }
}

/// One timestep backward from the saved h and b. `dState` holds dL/dv' then dL/db' of the next
/// timestep on entry and dL/dv, dL/db of this one on return (in place); nil at no timestep's cost
/// when the temporal gradient is cut (SLTT), and all zeros after the last timestep. With
/// m = h - θ, sg = sg'(m):
///   dS = dSpike + (1 - rho) dB' + dV' dv'/ds,   dv'/ds = vReset - h (hard) or -θ (soft), 0 if detached
///   dH = dS sg + dV' dv'/dh,                     dv'/dh = 1 - s (hard) or 1 (soft)
///   dθ = -dS sg + dV' dv'/dθ,                    dv'/dθ = 0 (hard) or -s (soft)
///   dInput = dH / tau, dV = dH (1 - 1/tau), dB = rho dB' + beta dθ.
@_specialize(where T == Float)
public func alifBackward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, smooth: Bool = false, dInput: UnsafeMutablePointer<T>, dState: UnsafeMutablePointer<T>?,
    dSpike: UnsafePointer<T>, h: UnsafePointer<T>, b: UnsafePointer<T>
) {
    switch spec.surrogate {
    case .atan: alifBackwardLoop(spec, ATanSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, smooth: smooth,
                                 dInput: dInput, dState: dState, dSpike: dSpike, h: h, b: b)
    case .sigmoid: alifBackwardLoop(spec, SigmoidSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, smooth: smooth,
                                    dInput: dInput, dState: dState, dSpike: dSpike, h: h, b: b)
    }
}

@inline(__always)
func alifBackwardLoop<T: EngineScalar, S: SurrogateFunction>(
    _ spec: NeuronSpec, _ surrogate: S, count: Int, smooth: Bool, dInput: UnsafeMutablePointer<T>,
    dState: UnsafeMutablePointer<T>?, dSpike: UnsafePointer<T>, h: UnsafePointer<T>, b: UnsafePointer<T>
) where S.Scalar == T {
    let charge = NeuronCharge<T>(spec)
    let threshold = T(spec.threshold), vReset = T(spec.vReset), beta = T(spec.beta), rho = T(spec.rho)
    let hard = spec.reset == .hard
    let resetSlope: T = spec.detachReset ? 0 : 1
    KernelLanes.forEachChunk(count: count) { range in
        for i in range {
            let hi = h[i], theta = threshold + beta * b[i], m = hi - theta
            let sg = surrogate.derivative(m)
            let s: T = smooth ? surrogate.primitive(m) : (m >= 0 ? 1 : 0)
            let dV = dState?[i] ?? 0, dB = dState?[count + i] ?? 0
            let dVdS = resetSlope * (hard ? vReset - hi : -theta)
            let dM = (dSpike[i] + (1 - rho) * dB + dV * dVdS) * sg
            let dH = dM + dV * (hard ? 1 - s : 1)
            let dTheta = -dM - (hard ? 0 : dV * s)
            dInput[i] = dH * charge.gain
            if let dState {
                dState[i] = dH * charge.decay
                dState[count + i] = rho * dB + beta * dTheta
            }
        }
    }
}

/// The states before the first timestep: v as `neuronInitialPotential`, no adaptation (b = 0).
func alifInitialState<T: EngineScalar>(_ spec: NeuronSpec, state: UnsafeMutablePointer<T>, count: Int) {
    state.update(repeating: T(neuronInitialPotential(spec)), count: count)
    (state + count).update(repeating: 0, count: count)
}
