import MemoryModel
import Profiles

/// The engine's layer norm: as PyTorch's, it keeps its input and each sample's mean and 1/std
/// (float32 scalars) for backward, and nothing else.
extension LayerMemoryTable {
    static func layerNormDeclaration(_ d: inout LayerMemoryDeclaration, _ spec: LayerNormSpec) {
        d.keepsInput = true
        d.saved = layerNormStatistics
        if spec.affine {
            d.parameters = [ParameterDeclaration(name: "weight", shape: spec.normalizedShape, trainable: true),
                            ParameterDeclaration(name: "bias", shape: spec.normalizedShape, trainable: true)]
        }
    }

    /// One float32 mean and one 1/sqrt(var + eps) per sample and timestep.
    public static let layerNormStatistics = [
        BufferDeclaration(name: "mean", role: .activation, shape: TensorShape([1]), dtype: .float32),
        BufferDeclaration(name: "rstd", role: .activation, shape: TensorShape([1]), dtype: .float32),
    ]
}
