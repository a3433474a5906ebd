/// Deeper copies of a network, for scaling studies: every reversible stage gets `factor` times
/// its blocks, and every T-RevSNN level `factor` times its ConvNeXt blocks. The copies are the
/// same blocks again (same shapes), named block0, block1, ... as the profile loader names them.
extension Profile {
    public var canScaleDepth: Bool { !reversibleStages.isEmpty || trevsnnNetwork != nil }

    public func scalingDepth(by factor: Int) -> Profile? {
        guard canScaleDepth, factor >= 1 else { return nil }
        var copy = self
        copy.layers = layers.map { layer in
            var scaled = layer
            switch layer.kind {
            case .reversible(var stage):
                let original = stage.blocks
                stage.blocks = (0..<original.count * factor).map { index in
                    let source = original[index % original.count]
                    let path = layer.path + "/block\(index)"
                    return ReversibleStage.Block(path: path, f: source.f.map { $0.renamingPrefix(source.path, to: path) },
                                                 g: source.g.map { $0.renamingPrefix(source.path, to: path) })
                }
                scaled.kind = .reversible(stage)
            case .trevsnn(var net):
                net.levels = net.levels.map { level in
                    var deeper = level
                    deeper.blocks = (0..<level.blocks.count * factor).map { index in
                        let source = level.blocks[index % level.blocks.count]
                        var block = source.renamingPrefix(source.path, to: level.path + "/block\(index)")
                        block.name = "block\(index)"
                        return block
                    }
                    return deeper
                }
                scaled.kind = .trevsnn(net)
            default:
                break
            }
            return scaled
        }
        copy.name = factor == 1 ? name : "\(name) x\(factor) depth"
        return copy
    }
}

extension Layer {
    /// The same layer with `old` replaced by `new` at the start of its path and its sub-layers' paths.
    func renamingPrefix(_ old: String, to new: String) -> Layer {
        var layer = self
        if layer.path == old || layer.path.hasPrefix(old + "/") {
            layer.path = new + layer.path.dropFirst(old.count)
        }
        switch kind {
        case .residual(let spec):
            layer.kind = .residual(ResidualSpec(main: spec.main.map { $0.renamingPrefix(old, to: new) },
                                                shortcut: spec.shortcut.map { $0.renamingPrefix(old, to: new) }))
        default:
            break
        }
        return layer
    }
}
