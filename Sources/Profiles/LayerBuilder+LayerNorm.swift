import MemoryModel
import Yams

/// `layernorm: {eps: 1e-5, affine: true}` (see `LayerNormSpec`). Kept apart from `buildKind` so
/// that the core switch only forwards to it.
extension LayerBuilder {
    static let layerNormKeys = ["eps", "affine", "name"]

    func buildLayerNorm(_ params: inout YAMLMapping, input: TensorShape, path: String,
                        location: SourceLocation) throws -> (LayerKind, TensorShape) {
        let epsilon = try params.double("eps", default: 1e-5, positive: true)
        let affine = try params.bool("affine", default: true)
        try params.rejectUnknownKeys(allowed: Self.layerNormKeys)
        // [C, N] tokens would need LayerNorm over the channels of each token, which PyTorch runs on a
        // channels-last [N, C] tensor: transposes and copies this project has not measured. Refused,
        // not planned as a normalisation over channels and tokens together.
        guard input.rank == 1 || input.rank == 3 else {
            throw fail("layernorm normalises one sample's flat features [F] or its whole [C, H, W] map, but receives \(input)",
                       fix: input.rank == 2
                           ? "use `batchnorm` on [channels, tokens] (Spikformer's choice), or put `layernorm` before `tokens` or after `flatten`"
                           : "put `layernorm` after a layer giving [F] or [C, H, W]",
                       path: path, at: location)
        }
        if (CheckedArithmetic.product(2, input.elementCount) ?? Int.max) > PlanningLimits.maxLayerParameters {
            throw fail("a layernorm over \(input) has more than the \(PlanningLimits.formatted(PlanningLimits.maxLayerParameters)) weights one layer may have",
                       fix: "normalise a smaller tensor", path: path, at: location)
        }
        return (.layerNorm(LayerNormSpec(normalizedShape: input, affine: affine, epsilon: epsilon)), input)
    }
}
