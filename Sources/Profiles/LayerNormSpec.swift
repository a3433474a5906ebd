import MemoryModel

/// `layernorm`: PyTorch's `nn.LayerNorm(normalized_shape)` with its statistics per sample and
/// timestep over every dimension of a flat [F] input or a [C, H, W] map (`nn.LayerNorm([C, H, W])`),
/// or, on [C, N] tokens, per token over its C channels (`tokens == N`): a spiking transformer's
/// `nn.LayerNorm(C)` applied to `x.transpose(-1, -2)` and transposed back. Its affine weight and
/// bias have `normalizedShape`.
public struct LayerNormSpec: Hashable, Sendable {
    /// The values normalised together (and the shape of weight and bias): the whole sample, or [C]
    /// for tokens.
    public var normalizedShape: TensorShape
    /// `elementwise_affine`: a learnt weight and bias of `normalizedShape`.
    public var affine: Bool
    /// Added to the variance under the square root (PyTorch's `eps`, 1e-5 by default).
    public var epsilon: Double
    /// N when the input is [C, N] tokens normalised per token over C; nil over the whole sample.
    public var tokens: Int?

    public init(normalizedShape: TensorShape, affine: Bool = true, epsilon: Double = 1e-5, tokens: Int? = nil) {
        self.normalizedShape = normalizedShape
        self.affine = affine
        self.epsilon = epsilon
        self.tokens = tokens
    }

    /// Values behind one mean and variance.
    public var normalizedCount: Int { normalizedShape.elementCount }

    /// Means (and rstds) per sample and timestep: one per token, or one.
    public var statisticsPerSample: Int { tokens ?? 1 }
}
