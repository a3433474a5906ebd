/// Visiting the layers of `allLayers` without listing them. The planner asks questions of every
/// layer for each plan (is one unsupported, a branches block, a reversible stage; how large is
/// the network), and copying every layer into a new array cost more than the questions.
extension Profile {
    /// Calls `body` on every layer in `allLayers`' order (depth first, parents first) until it
    /// returns false. Returns false when stopped early. `ProfileLayerVisitTests` holds the order
    /// to `allLayers`' for every bundled profile.
    @discardableResult
    public func forEachLayer(_ body: (Layer) -> Bool) -> Bool {
        Self.visit(layers, body)
    }

    /// The first layer of `allLayers` that matches.
    public func firstLayer(where matches: (Layer) -> Bool) -> Layer? {
        var found: Layer?
        forEachLayer { layer in
            guard matches(layer) else { return true }
            found = layer
            return false
        }
        return found
    }

    private static func visit(_ layers: [Layer], _ body: (Layer) -> Bool) -> Bool {
        for layer in layers {
            guard body(layer) else { return false }
            switch layer.kind {
            case .residual(let spec):
                guard visit(spec.main, body), visit(spec.shortcut, body) else { return false }
            case .branches(let spec):
                for path in spec.paths { guard visit(path, body) else { return false } }
            case .reversible(let stage):
                for block in stage.blocks { guard visit(block.f, body), visit(block.g, body) else { return false } }
            case .trevsnn(let net):
                for level in net.levels {
                    guard visit(level.down, body), visit(level.up, body), visit(level.blocks, body) else { return false }
                }
                guard visit(net.head, body) else { return false }
            case .attention(let spec):
                guard visit(spec.parts, body) else { return false }
            default: break
            }
        }
        return true
    }
}
