import MemoryModel
import Profiles

/// Every parameter tensor of a profile, in the one order both the planner and the engine
/// allocate them: layer by layer in forward order (nested layers after their parent), and for a
/// T-RevSNN network column by column (each column has its own weights), a level's alpha after
/// its layers, then the column's head.
public enum ParameterLayout {
    public struct Entry: Hashable, Sendable {
        /// The owning layer's path, with the column prefix for T-RevSNN ("col2/trev/level1/...").
        public var path: String
        public var parameter: ParameterDeclaration
        /// The layer (nil for a level's alpha).
        public var layer: Layer?
    }

    public static func columnPrefix(_ column: Int) -> String { "col\(column)/" }

    public static func entries(of profile: Profile, timesteps: Int) -> [Entry] {
        var out: [Entry] = []
        func add(_ layers: [Layer], prefix: String) {
            for layer in flatten(layers) {
                for parameter in LayerMemoryTable.declaration(for: layer).parameters {
                    out.append(Entry(path: prefix + layer.path, parameter: parameter, layer: layer))
                }
            }
        }
        for layer in profile.layers {
            guard case .trevsnn(let net) = layer.kind else {
                add([layer], prefix: "")
                continue
            }
            for column in 0..<timesteps {
                let prefix = columnPrefix(column)
                for level in net.levels {
                    add(level.down + level.up + level.blocks, prefix: prefix)
                    out.append(Entry(path: prefix + level.path,
                                     parameter: ParameterDeclaration(name: "alpha", shape: TensorShape([level.channels]), trainable: true),
                                     layer: nil))
                }
                add(net.head, prefix: prefix)
            }
        }
        return out
    }

    /// Scratch a layer keeps for the whole run (`LayerMemoryDeclaration.keptScratch`), in the order
    /// both the planner and the engine allocate it after every parameter: the layers' order in
    /// `entries`, each layer once (at its first parameter), under the entry's path.
    public static func keptScratch(_ entries: [Entry]) -> [(path: String, buffer: BufferDeclaration)] {
        var out: [(path: String, buffer: BufferDeclaration)] = []
        for entry in entries {
            guard let layer = entry.layer else { continue }
            let declaration = LayerMemoryTable.declaration(for: layer)
            guard !declaration.keptScratch.isEmpty, declaration.parameters.first?.name == entry.parameter.name else { continue }
            for buffer in declaration.keptScratch { out.append((entry.path, buffer)) }
        }
        return out
    }

    /// Layers with their nested layers (residual branches, reversible F and G), parents first.
    public static func flatten(_ layers: [Layer]) -> [Layer] {
        var out: [Layer] = []
        flatten(layers, into: &out)
        return out
    }

    /// `flatten` appending to one array: nested lists are not made and copied once per level.
    private static func flatten(_ layers: [Layer], into out: inout [Layer]) {
        for layer in layers {
            out.append(layer)
            switch layer.kind {
            case .residual(let spec): flatten(spec.main, into: &out); flatten(spec.shortcut, into: &out)
            case .branches(let spec): for path in spec.paths { flatten(path, into: &out) }
            case .reversible(let stage): for block in stage.blocks { flatten(block.f, into: &out); flatten(block.g, into: &out) }
            case .attention(let spec): out += spec.parts
            default: break
            }
        }
    }
}
