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
        // [C, N] tokens: normalised per token over its C channels, what a transformer's
        // nn.LayerNorm(C) on the transposed tokens does, not over channels and tokens together.
        guard input.rank >= 1 && input.rank <= 3 else {
            throw fail("layernorm normalises one sample's flat features [F], its [C, H, W] map or each token of [C, N] tokens, but receives \(input)",
                       fix: "put `layernorm` after a layer giving [F], [C, N] or [C, H, W]", path: path, at: location)
        }
        let spec = input.rank == 2
            ? LayerNormSpec(normalizedShape: TensorShape([input.dims[0]]), affine: affine, epsilon: epsilon, tokens: input.dims[1])
            : LayerNormSpec(normalizedShape: input, affine: affine, epsilon: epsilon)
        if (CheckedArithmetic.product(2, spec.normalizedCount) ?? Int.max) > PlanningLimits.maxLayerParameters {
            throw fail("a layernorm over \(spec.normalizedShape) has more than the \(PlanningLimits.formatted(PlanningLimits.maxLayerParameters)) weights one layer may have",
                       fix: "normalise a smaller tensor", path: path, at: location)
        }
        return (.layerNorm(spec), input)
    }
}
