import MemoryModel

/// Deeper copies of a network, for scaling studies: every reversible stage gets `factor` times
/// its blocks, and every T-RevSNN level `factor` times its ConvNeXt blocks. The copies are the
/// same blocks again (same shapes), named block0, block1, ... as the profile loader names them.
extension Profile {
    public var canScaleDepth: Bool { !reversibleStages.isEmpty || trevsnnNetwork != nil }

    /// Layers of the network deepened `factor` times, or nil past Int64: a sweep checks it
    /// against `PlanningLimits.maxLayers` before building any copy.
    public func layerCountScalingDepth(by factor: Int) -> Int? {
        var scaledLayers = 0
        for layer in allLayers {
            switch layer.kind {
            case .reversible(let stage): scaledLayers += stage.blocks.reduce(0) { $0 + ($1.f + $1.g).reduce(0) { $0 + $1.nestedLayerCount } }
            case .trevsnn(let net): scaledLayers += net.levels.reduce(0) { $0 + $1.blocks.reduce(0) { $0 + $1.nestedLayerCount } }
            default: break
            }
        }
        return CheckedArithmetic.product(scaledLayers, factor - 1).flatMap { CheckedArithmetic.sum($0, allLayers.count) }
    }

    /// The largest depth factor whose network stays within `PlanningLimits.maxLayers`.
    public var largestDepthFactor: Int {
        guard let once = layerCountScalingDepth(by: 2), let base = layerCountScalingDepth(by: 1), once > base else { return 1 }
        return 1 + max(0, PlanningLimits.maxLayers - base) / (once - base)
    }

    public func scalingDepth(by factor: Int) -> Profile? {
        guard canScaleDepth, factor >= 1, (layerCountScalingDepth(by: factor) ?? Int.max) <= PlanningLimits.maxLayers else { return nil }
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
    /// This layer and every layer nested in it.
    var nestedLayerCount: Int {
        switch kind {
        case .residual(let spec): return 1 + (spec.main + spec.shortcut).reduce(0) { $0 + $1.nestedLayerCount }
        case .branches(let spec): return 1 + spec.allPathLayers.reduce(0) { $0 + $1.nestedLayerCount }
        case .reversible(let stage): return 1 + stage.blocks.reduce(0) { $0 + ($1.f + $1.g).reduce(0) { $0 + $1.nestedLayerCount } }
        case .trevsnn(let net):
            return 1 + net.levels.reduce(0) { $0 + ($1.down + $1.up + $1.blocks).reduce(0) { $0 + $1.nestedLayerCount } }
                + net.head.reduce(0) { $0 + $1.nestedLayerCount }
        case .attention(let spec): return 1 + spec.parts.count
        default: return 1
        }
    }

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
        case .branches(let spec):
            layer.kind = .branches(BranchesSpec(join: spec.join, paths: spec.paths.map { $0.map { $0.renamingPrefix(old, to: new) } }))
        case .attention(var spec):
            let rename = { (layers: [Layer]) in layers.map { $0.renamingPrefix(old, to: new) } }
            (spec.query, spec.key, spec.value, spec.projection) = (rename(spec.query), rename(spec.key), rename(spec.value), rename(spec.projection))
            spec.attentionNeuron = spec.attentionNeuron.renamingPrefix(old, to: new)
            layer.kind = .attention(spec)
        default:
            break
        }
        return layer
    }
}
