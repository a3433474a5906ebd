import MemoryModel
import Profiles

/// The engine's declarations of dropout, adaptive average pooling and voting.
extension LayerMemoryTable {
    static func dvsDeclaration(_ d: inout LayerMemoryDeclaration, _ layer: Layer) {
        switch layer.kind {
        case .dropout:
            // The mask, one [B, ...] for the span: a multi-step run keeps one for every timestep
            // (SpikingJelly's mask is shared over T); a single-step run draws the same mask from
            // the step's seed at each timestep and keeps its own copy. Backward multiplies by it.
            d.saved = [BufferDeclaration(name: "mask", role: .activation, shape: layer.outputShape, perTimestep: false)]
        case .adaptiveAvgPool, .voting:
            // Averages over windows known from the shapes: backward needs nothing of forward.
            break
        default:
            preconditionFailure("\(layer.kind.keyword) is not a DVS-network layer")
        }
    }

    /// ParametricLIF: as LIF (h saved, v carried forward, dL/dv carried back), plus the charge's
    /// factor f = x - (v - vReset) (v - vReset without decay_input), saved so that dL/dw = sum over
    /// timesteps of dL/dh * f * q (1 - q) needs no previous timestep's state (SLTT and single steps
    /// have it no more), and the learnable w itself.
    static func plifDeclaration(_ d: inout LayerMemoryDeclaration, _ layer: Layer) {
        d.saved = [BufferDeclaration(name: "h", role: .neuronState, shape: layer.outputShape),
                   BufferDeclaration(name: "factor", role: .neuronState, shape: layer.outputShape)]
        d.forwardState = [BufferDeclaration(name: "v", role: .neuronState, shape: layer.outputShape)]
        d.backwardState = [BufferDeclaration(name: "dv", role: .workspace, shape: layer.outputShape)]
        d.parameters = [ParameterDeclaration(name: "w", shape: TensorShape([1]), trainable: true)]
    }
}
