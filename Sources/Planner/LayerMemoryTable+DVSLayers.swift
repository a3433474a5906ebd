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
}
