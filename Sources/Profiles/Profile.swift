import MemoryModel

/// An architecture and a training set-up, read from `profiles/*.yaml`, with every shape inferred.
public struct Profile: Hashable, Sendable {
    public var name: String
    /// The file it was read from (as given), for messages.
    public var sourcePath: String
    /// SHA-256 of the bytes it was read from (`sha256sum` of the file; of the UTF-8 text when
    /// parsed from text), as 64 hex digits: baselines and traces carry it so that figures of an
    /// edited profile are never compared as the same. Of the file's bytes, not a canonical form:
    /// any edit, a comment included, counts, and anyone can check it with `sha256sum`.
    public var sourceSHA256: String = ""
    public var description: String
    /// Per-sample input [channels, height, width] (per timestep when `inputPerTimestep`).
    public var inputShape: TensorShape
    /// The input changes every timestep (event frames [T, C, H, W]): the batch is [T, B, C, H, W]
    /// and the first layer sees another frame at each timestep, instead of one image repeated.
    public var inputPerTimestep = false
    public var timesteps: Int
    public var batch: Int
    public var dtype: DType
    public var neuron: NeuronSpec
    public var optimizer: OptimizerSpec
    public var layers: [Layer]
    /// Output features of the last layer: the number of classes.
    public var classes: Int

    /// Every layer in forward order, nested ones included (depth-first, parents first).
    public var allLayers: [Layer] {
        var out: [Layer] = []
        func visit(_ layers: [Layer]) {
            for layer in layers {
                out.append(layer)
                switch layer.kind {
                case .residual(let spec):
                    visit(spec.main)
                    visit(spec.shortcut)
                case .branches(let spec):
                    for path in spec.paths { visit(path) }
                case .reversible(let stage):
                    for block in stage.blocks { visit(block.f); visit(block.g) }
                case .trevsnn(let net):
                    for level in net.levels { visit(level.down); visit(level.up); visit(level.blocks) }
                    visit(net.head)
                case .attention(let spec):
                    visit(spec.parts)
                default: break
                }
            }
        }
        visit(layers)
        return out
    }

    /// The input batch's shape: [B, C, H, W], or [T, B, C, H, W] for per-timestep input.
    public func inputBatchShape(batch: Int, timesteps: Int) -> TensorShape {
        let shape = inputShape.prepending(batch)
        return inputPerTimestep ? shape.prepending(timesteps) : shape
    }

    public var reversibleStages: [Layer] { allLayers.filter { if case .reversible = $0.kind { return true }; return false } }
    public var trevsnnNetwork: TRevNetwork? {
        for layer in layers { if case .trevsnn(let net) = layer.kind { return net } }
        return nil
    }
}
