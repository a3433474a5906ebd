/// A RevSNN reversible stage: the channels split in halves (X1, X2) and each block computes
/// Y1 = X1 + F(X2), Y2 = X2 + G(Y1) over all timesteps. F and G map a half to a half of the same
/// shape. A block whose F and G hold only neurons is the weight-free reversible spiking neuron.
public struct ReversibleStage: Hashable, Sendable {
    public struct Block: Hashable, Sendable {
        public var path: String
        public var f: [Layer]
        public var g: [Layer]
    }

    public var channels: Int
    public var blocks: [Block]

    /// The shape of one half, per sample.
    public func halfShape(height: Int, width: Int) -> [Int] { [channels / 2, height, width] }
}
