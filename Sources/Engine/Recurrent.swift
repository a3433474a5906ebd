import Profiles

// The recurrent spiking layer, one timestep per call (`RecurrentSpec`):
//   I_t = x_t W_x^T + s_{t-1} W_s^T + b,   (s_t, h_t, v') = neuron(I_t, v),
// where W = [W_x | W_s] is one [out, in + out] row-major matrix: W_x its first `in` columns,
// W_s the last `out` (read in place through the GEMM's leading dimension, no copy).

/// The dimensions of one call: input [batch, inFeatures], output [batch, outFeatures].
public struct RecurrentShape: Hashable, Sendable {
    public var batch: Int
    public var inFeatures: Int
    public var outFeatures: Int

    public init(batch: Int, inFeatures: Int, outFeatures: Int) {
        precondition(batch > 0 && inFeatures > 0 && outFeatures > 0)
        self.batch = batch
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    /// The weight's row length: the input's columns, then the fed-back spikes'.
    public var weightColumns: Int { inFeatures + outFeatures }
    /// Elements of one timestep's output (and of v, s_{t-1}, h, I_t).
    public var outCount: Int { batch * outFeatures }
}

/// One timestep forward. `state` holds v (outCount elements) then s_{t-1} (outCount); both are
/// advanced in place. `sPrevious` receives a copy of s_{t-1} for backward, `h` the charged
/// potential, `current` is scratch for I_t. `smooth` fires the surrogate's primitive instead of a
/// step (gradient checks only).
@_specialize(where T == Float)
public func recurrentForward<T: EngineScalar>(
    _ shape: RecurrentShape, neuron spec: NeuronSpec, smooth: Bool = false, spike: UnsafeMutablePointer<T>,
    h: UnsafeMutablePointer<T>, sPrevious: UnsafeMutablePointer<T>, current: UnsafeMutablePointer<T>,
    state: UnsafeMutablePointer<T>, input: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>?
) {
    let s = shape, n = s.outCount
    let v = state, fedBack = state + n
    sPrevious.update(from: fedBack, count: n)
    T.gemm(transposeA: false, transposeB: true, m: s.batch, n: s.outFeatures, k: s.inFeatures,
           alpha: 1, a: input, lda: s.inFeatures, b: weight, ldb: s.weightColumns, beta: 0, c: current, ldc: s.outFeatures)
    T.gemm(transposeA: false, transposeB: true, m: s.batch, n: s.outFeatures, k: s.outFeatures,
           alpha: 1, a: UnsafePointer(sPrevious), lda: s.outFeatures, b: weight + s.inFeatures, ldb: s.weightColumns,
           beta: 1, c: current, ldc: s.outFeatures)
    if let bias {
        for b in 0..<s.batch {
            let row = current + b * s.outFeatures
            for o in 0..<s.outFeatures { row[o] += bias[o] }
        }
    }
    if smooth {
        smoothedNeuronForward(spec, count: n, spike: spike, h: h, vNext: v, input: current, v: v)
    } else {
        neuronForward(spec, count: n, spike: spike, h: h, vNext: v, input: current, v: v)
    }
    fedBack.update(from: spike, count: n)
}

/// One timestep backward, timesteps taken last to first. `dState` holds dL/dv then dL/ds_t carried
/// from timestep t+1 (zeros at the last timestep) and receives those of timestep t-1; nil where the
/// temporal gradient is cut (SLTT: v and s_{t-1} enter each timestep detached, so W_s gets only the
/// current timestep's term dI_t^T s_{t-1} and nothing flows into earlier timesteps).
/// dWeight and dBias are accumulated; dInput (nil when not needed) is overwritten.
@_specialize(where T == Float)
public func recurrentBackward<T: EngineScalar>(
    _ shape: RecurrentShape, neuron spec: NeuronSpec, smooth: Bool = false, dInput: UnsafeMutablePointer<T>?,
    dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>?, dCurrent: UnsafeMutablePointer<T>,
    dState: UnsafeMutablePointer<T>?, dSpike: UnsafePointer<T>, h: UnsafePointer<T>, sPrevious: UnsafePointer<T>,
    input: UnsafePointer<T>, weight: UnsafePointer<T>
) {
    let s = shape, n = s.outCount
    // dL/ds_t: from the layers above at t, plus through W_s into I_{t+1}.
    var spikeGradient = dSpike
    if let dState {
        let carried = dState + n
        for i in 0..<n { carried[i] += dSpike[i] }
        spikeGradient = UnsafePointer(carried)
    }
    let dv = dState
    if smooth {
        smoothedNeuronBackward(spec, count: n, dInput: dCurrent, dVPrevious: dv, dSpike: spikeGradient,
                               dVNext: dv.map { UnsafePointer($0) }, h: h)
    } else {
        neuronBackward(spec, count: n, dInput: dCurrent, dVPrevious: dv, dSpike: spikeGradient,
                       dVNext: dv.map { UnsafePointer($0) }, h: h)
    }
    let dI = UnsafePointer(dCurrent)
    T.gemm(transposeA: true, transposeB: false, m: s.outFeatures, n: s.inFeatures, k: s.batch,
           alpha: 1, a: dI, lda: s.outFeatures, b: input, ldb: s.inFeatures, beta: 1, c: dWeight, ldc: s.weightColumns)
    T.gemm(transposeA: true, transposeB: false, m: s.outFeatures, n: s.outFeatures, k: s.batch,
           alpha: 1, a: dI, lda: s.outFeatures, b: sPrevious, ldb: s.outFeatures, beta: 1, c: dWeight + s.inFeatures,
           ldc: s.weightColumns)
    if let dBias {
        for b in 0..<s.batch {
            let row = dI + b * s.outFeatures
            for o in 0..<s.outFeatures { dBias[o] += row[o] }
        }
    }
    if let dInput {
        T.gemm(transposeA: false, transposeB: false, m: s.batch, n: s.inFeatures, k: s.outFeatures,
               alpha: 1, a: dI, lda: s.outFeatures, b: weight, ldb: s.weightColumns, beta: 0, c: dInput, ldc: s.inFeatures)
    }
    if let dState {
        // dL/ds_{t-1} = dI_t W_s, replacing what was carried into this timestep (consumed above).
        T.gemm(transposeA: false, transposeB: false, m: s.batch, n: s.outFeatures, k: s.outFeatures,
               alpha: 1, a: dI, lda: s.outFeatures, b: weight + s.inFeatures, ldb: s.weightColumns, beta: 0,
               c: dState + n, ldc: s.outFeatures)
    }
}
