import MemoryModel

/// A T-RevSNN network (after the stem): L levels, one column per timestep, each column with its
/// own weights. Level l of column t computes
///   c[l][t] = F_l(c[l-1][t], c[l+1][t-1]) + alpha_l * c[l][t-1]
/// with c[-1][t] the stem output and c[l][-1] = 0. F_l = blocks(down(c[l-1][t]) + up(c[l+1][t-1])).
/// At the first column the up input is zero and the up path is skipped.
public struct TRevNetwork: Hashable, Sendable {
    public struct Level: Hashable, Sendable {
        public var path: String
        public var channels: Int
        /// [C, H, W] of this level's state c[l][t].
        public var stateShape: TensorShape
        /// From the level below in the same column: neuron, conv (3x3 stride 2 or 1x1), batchnorm.
        public var down: [Layer]
        /// From the level above in the previous column: neuron, 1x1 conv, batchnorm, upsample. Empty at the top.
        public var up: [Layer]
        /// ConvNeXt-style residual blocks applied to the fused input.
        public var blocks: [Layer]
    }

    public var levels: [Level]
    public var kernel: Int
    public var expansion: Int
    public var alphaInit: Double
    /// Classifier on each column's top level: neuron, global average pool, flatten, linear.
    public var head: [Layer]
    public var classes: Int
}
