import CKernels
import Profiles

// Spiking neurons as SpikingJelly's charge, fire, reset, one timestep per call:
//   charge  h  = v + (x - (v - vReset)) / tau      (LIF, decay_input form)    h = v + x   (IF)
//   fire    s  = Heaviside(h - threshold)           (s = 1 when h >= threshold, as SpikingJelly)
//   reset   v' = h * (1 - s) + vReset * s  (hard)   v' = h - s * threshold  (soft)
// SpikingJelly writes a soft reset as v_reset = None, and its LIF then leaks towards 0, not towards
// vReset: the charge below does the same, and the first timestep starts from `neuronInitialPotential`.
// Backward needs only h (saved by forward): the spike is recomputed from it.

/// h = decay * v + gain * x + offset: LIF and IF charges in one form, constants computed once per call.
struct NeuronCharge<T: EngineScalar> {
    var decay: T   // dh/dv
    var gain: T    // dh/dx
    var offset: T

    init(_ spec: NeuronSpec) {
        switch spec.type {
        case .lif, .alif:  // an adaptive LIF charges as a LIF
            precondition(spec.tau > 0, "LIF tau must be positive")
            let leakTarget = spec.reset == .hard ? spec.vReset : 0
            decay = T(1 - 1 / spec.tau)
            gain = T(1 / spec.tau)
            offset = T(leakTarget / spec.tau)
        case .if:
            decay = 1
            gain = 1
            offset = 0
        case .turnoff:
            preconditionFailure("the turn-off neuron has no membrane: use turnOffNeuronForward/Backward")
        case .plif:
            preconditionFailure("a PLIF's decay is learned: use plifForward/plifBackward")
        case .li:
            // Leaks towards 0: v' = v + (x - v) / tau.
            precondition(spec.tau > 0, "LI tau must be positive")
            decay = T(1 - 1 / spec.tau)
            gain = T(1 / spec.tau)
            offset = 0
        }
    }
}

/// The membrane potential before the first timestep: vReset for a hard reset, 0 for a soft one
/// (SpikingJelly registers v as v_reset, or 0 when v_reset is None).
public func neuronInitialPotential(_ spec: NeuronSpec) -> Double {
    spec.reset == .hard ? spec.vReset : 0
}

/// One timestep forward over `count` neurons: (x, v) -> (spike, h, v'). `vNext` may be `v` itself
/// (the state updated in place); every buffer holds `count` elements.
@_specialize(where T == Float)
public func neuronForward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, spike: UnsafeMutablePointer<T>, h: UnsafeMutablePointer<T>,
    vNext: UnsafeMutablePointer<T>, input: UnsafePointer<T>, v: UnsafePointer<T>
) {
    let charge = NeuronCharge<T>(spec)
    let threshold = T(spec.threshold), vReset = T(spec.vReset)
    // Elementwise: the kernel lanes take a contiguous range each, in blocks small enough to stay in
    // L1 across three loops. One loop over all five buffers stays scalar: the compiler cannot prove
    // they do not overlap (and in training vNext is v itself). Each loop below touches few enough
    // buffers for a runtime overlap check and reads nothing it writes at another index, so each
    // vectorizes. Same arithmetic, same results as one loop.
    // Float runs the C kernel (one fused loop, vectorized for this processor, the same arithmetic).
    let floatCharge = NeuronCharge<Float>(spec)
    KernelLanes.forEachChunk(count: count) { range in
        if T.self == Float.self {
            let i = range.lowerBound
            snn_neuron_forward(range.count, floatCharge.decay, floatCharge.gain, floatCharge.offset, Float(spec.threshold),
                               Float(spec.vReset), spec.reset == .hard, floats(input) + i, floats(v) + i, floats(h) + i,
                               floats(spike) + i, floats(vNext) + i)
            return
        }
        var start = range.lowerBound
        while start < range.upperBound {
            let block = start..<min(start + neuronBlock, range.upperBound)
            for i in block { h[i] = charge.decay * v[i] + charge.gain * input[i] + charge.offset }
            for i in block { spike[i] = h[i] >= threshold ? 1 : 0 }
            switch spec.reset {
            case .hard: for i in block { vNext[i] = h[i] >= threshold ? vReset : h[i] }
            case .soft: for i in block { vNext[i] = h[i] - spike[i] * threshold }
            }
            start = block.upperBound
        }
    }
}

/// Elements per block of the neuron kernels' split loops (4 KiB of each Float buffer).
let neuronBlock = 1024

/// One timestep backward over `count` neurons, from the saved h:
///   dH = dSpike * sg'(h - threshold) + dVNext * dv'/dh,
///   dv'/dh = (1 - s) + (vReset - h) * sg'   (hard)   or   1 - threshold * sg'   (soft),
/// where detachReset drops the sg' term of the reset (SpikingJelly's `spike.detach()` in the reset).
/// Then dInput = dH * dh/dx and dVPrevious = dH * dh/dv (both overwritten).
/// `dVNext` is nil at the last timestep and whenever the temporal gradient is cut (SLTT); `dVPrevious`
/// may then be nil too. `dVPrevious` may be the same buffer as `dVNext` (updated in place).
@_specialize(where T == Float)
public func neuronBackward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, dInput: UnsafeMutablePointer<T>, dVPrevious: UnsafeMutablePointer<T>?,
    dSpike: UnsafePointer<T>, dVNext: UnsafePointer<T>?, h: UnsafePointer<T>
) {
    if T.self == Float.self && spec.surrogate == .atan {
        neuronBackwardFloatATan(spec, count: count, dInput: floats(dInput), dVPrevious: dVPrevious.map { floats($0) },
                                dSpike: floats(dSpike), dVNext: dVNext.map { floats($0) }, h: floats(h))
        return
    }
    // Dispatch once on the surrogate so the loop is specialized on it.
    switch spec.surrogate {
    case .atan:
        neuronBackwardLoop(spec, ATanSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, dInput: dInput,
                           dVPrevious: dVPrevious, dSpike: dSpike, dVNext: dVNext, h: h)
    case .sigmoid:
        neuronBackwardLoop(spec, SigmoidSurrogate<T>(alpha: T(spec.surrogateAlpha)), count: count, dInput: dInput,
                           dVPrevious: dVPrevious, dSpike: dSpike, dVNext: dVNext, h: h)
    }
}

@inline(__always)
func neuronBackwardLoop<T: EngineScalar, S: SurrogateFunction>(
    _ spec: NeuronSpec, _ surrogate: S, count: Int, dInput: UnsafeMutablePointer<T>, dVPrevious: UnsafeMutablePointer<T>?,
    dSpike: UnsafePointer<T>, dVNext: UnsafePointer<T>?, h: UnsafePointer<T>
) where S.Scalar == T {
    let charge = NeuronCharge<T>(spec)
    let threshold = T(spec.threshold), vReset = T(spec.vReset)
    let hard = spec.reset == .hard
    // With a detached reset, the reset contributes no sg' term to dv'/dh.
    let resetSlope: T = spec.detachReset ? 0 : 1
    // Blocks over contiguous ranges, one range per kernel lane, as in forward: dH goes to dInput
    // first (reading dVNext), then dVPrevious = dH * decay (dVPrevious may be dVNext: each block of it
    // is read before it is written), then dInput = dH * gain in place. Each loop vectorizes.
    KernelLanes.forEachChunk(count: count) { range in
        var start = range.lowerBound
        while start < range.upperBound {
            let block = start..<min(start + neuronBlock, range.upperBound)
            if let dVNext {
                for i in block {
                    let hi = h[i]
                    let x = hi - threshold
                    let sg = surrogate.derivative(x)
                    let s: T = x >= 0 ? 1 : 0
                    let dVdH = hard ? (1 - s) + resetSlope * (vReset - hi) * sg
                                    : 1 - resetSlope * threshold * sg
                    dInput[i] = dSpike[i] * sg + dVNext[i] * dVdH
                }
            } else {
                for i in block { dInput[i] = dSpike[i] * surrogate.derivative(h[i] - threshold) }
            }
            if let dVPrevious {
                for i in block { dVPrevious[i] = dInput[i] * charge.decay }
            }
            for i in block { dInput[i] *= charge.gain }
            start = block.upperBound
        }
    }
}

/// `neuronBackwardLoop` with the atan surrogate in Float, as one fused C loop vectorized for this processor:
/// the same operations in the same order (ATanSurrogate's constants computed as it computes them).
func neuronBackwardFloatATan(
    _ spec: NeuronSpec, count: Int, dInput: UnsafeMutablePointer<Float>, dVPrevious: UnsafeMutablePointer<Float>?,
    dSpike: UnsafePointer<Float>, dVNext: UnsafePointer<Float>?, h: UnsafePointer<Float>
) {
    let charge = NeuronCharge<Float>(spec), alpha = Float(spec.surrogateAlpha)
    let uScale = Float.pi / 2 * alpha, halfAlpha = alpha / 2
    let resetSlope: Float = spec.detachReset ? 0 : 1
    KernelLanes.forEachChunk(count: count) { range in
        let i = range.lowerBound
        snn_neuron_backward_atan(range.count, uScale, halfAlpha, Float(spec.threshold), Float(spec.vReset), spec.reset == .hard,
                                 resetSlope, charge.decay, charge.gain, h + i, dSpike + i, dVNext.map { $0 + i },
                                 dInput + i, dVPrevious.map { $0 + i })
    }
}

/// T-RevSNN's stateless "turn-off" neuron forward: spike = Heaviside(input - threshold).
/// Backward needs only the input (kept by the caller), as the memory table declares.
@_specialize(where T == Float)
public func turnOffNeuronForward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, spike: UnsafeMutablePointer<T>, input: UnsafePointer<T>
) {
    let threshold = T(spec.threshold)
    for i in 0..<count { spike[i] = input[i] >= threshold ? 1 : 0 }
}

/// dInput = dSpike * sg'(input - threshold) (overwritten).
@_specialize(where T == Float)
public func turnOffNeuronBackward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, dInput: UnsafeMutablePointer<T>, dSpike: UnsafePointer<T>, input: UnsafePointer<T>
) {
    let threshold = T(spec.threshold)
    switch spec.surrogate {
    case .atan:
        let sg = ATanSurrogate<T>(alpha: T(spec.surrogateAlpha))
        for i in 0..<count { dInput[i] = dSpike[i] * sg.derivative(input[i] - threshold) }
    case .sigmoid:
        let sg = SigmoidSurrogate<T>(alpha: T(spec.surrogateAlpha))
        for i in 0..<count { dInput[i] = dSpike[i] * sg.derivative(input[i] - threshold) }
    }
}
