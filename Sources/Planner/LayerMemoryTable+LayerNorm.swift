import MemoryModel
import Profiles

/// The engine's layer norm: as PyTorch's, it keeps its input and each sample's mean and 1/std
/// (float32, per token on tokens) for backward, and nothing else.
extension LayerMemoryTable {
    static func layerNormDeclaration(_ d: inout LayerMemoryDeclaration, _ spec: LayerNormSpec) {
        d.keepsInput = true
        d.saved = layerNormStatistics(spec)
        if spec.affine {
            d.parameters = [ParameterDeclaration(name: "weight", shape: spec.normalizedShape, trainable: true),
                            ParameterDeclaration(name: "bias", shape: spec.normalizedShape, trainable: true)]
        }
    }

    /// One float32 mean and one 1/sqrt(var + eps) per sample (per token on [C, N] tokens) and timestep.
    public static func layerNormStatistics(_ spec: LayerNormSpec) -> [BufferDeclaration] {
        ["mean", "rstd"].map { BufferDeclaration(name: $0, role: .activation, shape: TensorShape([spec.statisticsPerSample]), dtype: .float32) }
    }
}
