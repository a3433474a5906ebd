import MemoryModel
import Profiles

extension LayerMemoryTable {
    /// Adaptive LIF in the engine: per timestep h (the charged potential) and b (the adaptation the
    /// threshold used), from which backward recomputes the threshold, the spike and the surrogate.
    /// Two states cross timesteps, v and b, held in one buffer [2, ...] (v first, then b) so that the
    /// schedules, which carry and checkpoint one state per layer, carry both; dL/dv and dL/db likewise.
    static func alifDeclaration(_ d: inout LayerMemoryDeclaration, _ layer: Layer) {
        let pair = layer.outputShape.prepending(2)
        d.saved = [BufferDeclaration(name: "h", role: .neuronState, shape: layer.outputShape),
                   BufferDeclaration(name: "b", role: .neuronState, shape: layer.outputShape)]
        d.forwardState = [BufferDeclaration(name: "v,b", role: .neuronState, shape: pair)]
        d.backwardState = [BufferDeclaration(name: "dv,db", role: .workspace, shape: pair)]
    }
}
