import Profiles

// The leaky integrator readout, one timestep per call:
//   v' = v + (x - v) / tau = decay * v + gain * x,   output = v'
// Linear in x and v: backward needs no saved tensor, only the carried dL/dv'.

/// One timestep forward over `count` neurons: (x, v) -> v', written to `output` and to `vNext`
/// (which may be `v` itself, the state updated in place).
@_specialize(where T == Float)
public func leakyIntegratorForward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, output: UnsafeMutablePointer<T>, vNext: UnsafeMutablePointer<T>,
    input: UnsafePointer<T>, v: UnsafePointer<T>
) {
    let charge = NeuronCharge<T>(spec)
    for i in 0..<count {
        let next = charge.decay * v[i] + charge.gain * input[i]
        output[i] = next
        vNext[i] = next
    }
}

/// One timestep backward: dV' = dOutput + dVNext (dVNext nil at the last timestep and where the
/// temporal gradient is cut, SLTT), then dInput = dV' * gain and dVPrevious = dV' * decay
/// (overwritten; `dVPrevious` may be `dVNext` itself).
@_specialize(where T == Float)
public func leakyIntegratorBackward<T: EngineScalar>(
    _ spec: NeuronSpec, count: Int, dInput: UnsafeMutablePointer<T>, dVPrevious: UnsafeMutablePointer<T>?,
    dOutput: UnsafePointer<T>, dVNext: UnsafePointer<T>?
) {
    let charge = NeuronCharge<T>(spec)
    for i in 0..<count {
        let dV = dOutput[i] + (dVNext?[i] ?? 0)
        dVPrevious?[i] = dV * charge.decay
        dInput[i] = dV * charge.gain
    }
}
