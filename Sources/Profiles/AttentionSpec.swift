import MemoryModel

/// A spiking self-attention layer over [channels, tokens] (Spikformer's SSA, Zhou et al. 2023):
/// q, k and v are each a kernel-1 conv1d, a batch norm and a neuron; attn = (q kᵀ) * scale with no
/// softmax, x = attn v per head; then the attention neuron and the projection (conv1d, batch norm,
/// neuron). Its sub-layers are layers of their own (paths `<attention>/q_conv` ...), named as in
/// the reference code; the attention layer itself holds the products.
public struct AttentionSpec: Hashable, Sendable {
    public enum Kind: String, CaseIterable, Sendable {
        /// Spikformer's spiking self-attention: (q kᵀ) v, scaled.
        case ssa
        /// The Spike-driven Transformer's SDSA (Yao et al. 2023): q ⊙ SN(Σ_tokens k ⊙ v), the
        /// neuron (`talking_heads_lif`) firing on one column sum per channel; the projection has
        /// no neuron (the next block fires first).
        case sdsa
    }

    public var kind: Kind
    public var heads: Int
    public var scale: Double
    public var channels: Int
    public var tokens: Int
    /// q, k and v: [conv1d, batchnorm, neuron] each, from the attention's input.
    public var query: [Layer]
    public var key: [Layer]
    public var value: [Layer]
    /// SSA: the neuron on the joined heads (`attn_lif`, threshold 0.5 in Spikformer). SDSA: the
    /// neuron on the column sums, [channels, 1] (`talking_heads_lif`, threshold 0.5).
    public var attentionNeuron: Layer
    /// SSA: [conv1d, batchnorm, neuron] on the attention neuron's spikes; SDSA: [conv1d, batchnorm]
    /// on q ⊙ the spikes.
    public var projection: [Layer]

    public init(kind: Kind, heads: Int, scale: Double, channels: Int, tokens: Int, query: [Layer], key: [Layer], value: [Layer],
                attentionNeuron: Layer, projection: [Layer]) {
        self.kind = kind
        self.heads = heads
        self.scale = scale
        self.channels = channels
        self.tokens = tokens
        self.query = query
        self.key = key
        self.value = value
        self.attentionNeuron = attentionNeuron
        self.projection = projection
    }

    /// Every sub-layer in forward order (q, k, v, the attention neuron, the projection).
    public var parts: [Layer] { query + key + value + [attentionNeuron] + projection }

    /// One head's width: channels / heads.
    public var headChannels: Int { channels / heads }

    /// The attention map per sample and timestep: [heads, tokens, tokens].
    public var mapShape: TensorShape { TensorShape([heads, tokens, tokens]) }

    /// q, k, v or the product split into heads: [heads, tokens, channels / heads].
    public var headsShape: TensorShape { TensorShape([heads, tokens, headChannels]) }
}
