import MemoryModel
import Profiles

/// The recurrent spiking layer in snnmem's engine (`Sources/Engine/Recurrent.swift`), per timestep:
///   I_t = W[:, :in] x_t + W[:, in:] s_{t-1} + b,   h_t = charge(v, I_t),   s_t = H(h_t - threshold).
/// Backward needs x_t (kept, the layer's input), s_{t-1} (a copy, saved: the layer's output is
/// handed on and not kept) and h_t (the spike and reset derivatives, as a `neuron` layer keeps it).
extension LayerMemoryTable {
    static func recurrentDeclaration(_ d: inout LayerMemoryDeclaration, _ layer: Layer, _ spec: RecurrentSpec) {
        let features = layer.outputShape
        d.keepsInput = true
        d.canSkipInputGradient = true
        d.parameters = [ParameterDeclaration(name: "weight", shape: TensorShape([spec.outFeatures, spec.weightColumns]), trainable: true)]
        if spec.bias { d.parameters.append(ParameterDeclaration(name: "bias", shape: TensorShape([spec.outFeatures]), trainable: true)) }
        d.saved = [BufferDeclaration(name: "sPrevious", role: .activation, shape: features),
                   BufferDeclaration(name: "h", role: .neuronState, shape: features)]
        // One timestep's input current I_t for the whole batch (forward) and its gradient (backward),
        // reused timestep after timestep: scratch led by the batch.
        d.forwardWorkspace = [BufferDeclaration(name: "current", role: .workspace, shape: features, perSample: false, batchLimit: Int.max)]
        d.backwardWorkspace = [BufferDeclaration(name: "dCurrent", role: .workspace, shape: features, perSample: false, batchLimit: Int.max)]
        // Carried across timesteps in one buffer each: v then s_{t-1} (forward), dL/dv then dL/ds_{t-1}
        // (backward, absent where the temporal gradient is cut). The batch's v block comes first.
        let twice = TensorShape([2 * spec.outFeatures])
        d.forwardState = [BufferDeclaration(name: "state", role: .neuronState, shape: twice)]
        d.backwardState = [BufferDeclaration(name: "dState", role: .workspace, shape: twice)]
    }

    /// The linear map over in + out columns and the neuron's charge, fire and reset.
    static func recurrentForwardFlops(_ spec: RecurrentSpec) -> Double {
        2 * Double(spec.outFeatures * spec.weightColumns) + (spec.bias ? Double(spec.outFeatures) : 0) + 5 * Double(spec.outFeatures)
    }
}
