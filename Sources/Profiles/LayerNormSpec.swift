import MemoryModel

/// `layernorm`: PyTorch's `nn.LayerNorm(normalized_shape)` over every dimension of one sample and
/// timestep, its statistics per sample: the features of a flat [F] input, or the whole [C, H, W]
/// map of an image input (`nn.LayerNorm([C, H, W])`). Its affine weight and bias have that shape.
public struct LayerNormSpec: Hashable, Sendable {
    /// The per-sample shape normalised (and the shape of weight and bias).
    public var normalizedShape: TensorShape
    /// `elementwise_affine`: a learnt weight and bias of `normalizedShape`.
    public var affine: Bool
    /// Added to the variance under the square root (PyTorch's `eps`, 1e-5 by default).
    public var epsilon: Double

    public init(normalizedShape: TensorShape, affine: Bool = true, epsilon: Double = 1e-5) {
        self.normalizedShape = normalizedShape
        self.affine = affine
        self.epsilon = epsilon
    }

    /// Values behind one sample's mean and variance.
    public var normalizedCount: Int { normalizedShape.elementCount }
}
