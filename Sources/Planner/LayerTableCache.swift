import MemoryModel
import Profiles

/// Each layer's table entries (`LayerMemoryTable`'s declaration and FLOPs, `PyTorchLayerTable`'s
/// layout), made once per plan: a walk asks for them again at every timestep, every
/// recomputation and in backward, and making them builds arrays of buffer declarations each time.
/// Keyed by layer path. Every layer of the profile has its entry from the start, and a walk's
/// layers are the profile's: where no two of them share a path (a loaded profile: names are
/// unique in their list and have no slashes) the path alone finds a layer's entry; otherwise (a
/// hand-built profile may have such layers) a hit also needs the same layer. Entries are objects
/// so that a lookup hands out a reference instead of copying a layer and its declarations.
///
/// A walk asks for layers mostly in the profile's order (forward) or against it (backward), so
/// the entries are also kept in that order and a lookup first tries the neighbours of the last
/// one found: the same path there (usually the very same string, compared by reference) is
/// found without hashing the path, which the dictionary does at every lookup.
struct LayerTableCache {
    final class Entry {
        let layer: Layer
        let declaration: LayerMemoryDeclaration
        let forwardFlops: Double
        /// Made on first use: only the PyTorch runtimes read it.
        var layout: PyTorchLayerLayout?
        /// Its index in `ordered`; nil for a layer that is not the profile's.
        var place: Int?

        init(_ layer: Layer) {
            self.layer = layer
            declaration = LayerMemoryTable.declaration(for: layer)
            forwardFlops = LayerMemoryTable.forwardFlops(for: layer)
        }
    }

    let device: PyTorchLayerTable.Device
    let autocast: DType?
    /// The layers beside token layer norms, whose PyTorch layouts change with a transposed view.
    private var transposed: [String: PyTorchTransposedTokens] = [:]
    private var entries: [String: Entry] = [:]
    /// No two of the profile's layers share a path.
    private var pathsAreUnique = true
    /// The profile's entries in `allLayers` order (the first layer of each path), and the place
    /// there of the last entry a lookup found.
    private var ordered: [Entry] = []
    private var lastPlace = 0

    init(profile: Profile, device: PyTorchLayerTable.Device, autocast: DType?) {
        self.device = device
        self.autocast = autocast
        if profile.firstLayer(where: TransposedTokenNeighbours.isTokenNorm) != nil {
            transposed = TransposedTokenNeighbours(profile).byPath
        }
        for layer in profile.allLayers {
            if let existing = entries[layer.path] {
                if existing.layer != layer { pathsAreUnique = false }
            } else {
                let entry = Entry(layer)
                entry.place = ordered.count
                entries[layer.path] = entry
                ordered.append(entry)
            }
        }
    }

    /// The layer's entry (made here for a layer that is not the profile's).
    mutating func entry(_ layer: Layer) -> Entry {
        if pathsAreUnique {
            // The next layer forward, the next backward, then the same again.
            if let hit = neighbour(lastPlace + 1, layer) ?? neighbour(lastPlace - 1, layer) ?? neighbour(lastPlace, layer) {
                return hit
            }
        }
        if let hit = entries[layer.path], pathsAreUnique || hit.layer == layer {
            if let place = hit.place { lastPlace = place }
            return hit
        }
        let entry = Entry(layer)
        entries[layer.path] = entry
        return entry
    }

    /// The entry at `place` in profile order when it has the layer's path (it becomes the last found).
    private mutating func neighbour(_ place: Int, _ layer: Layer) -> Entry? {
        guard ordered.indices.contains(place), ordered[place].layer.path == layer.path else { return nil }
        lastPlace = place
        return ordered[place]
    }

    /// `PyTorchLayerTable.layout(for:device:autocast:transposed:)` of an entry's layer on this plan's
    /// device and autocast dtype, beside the profile's token layer norms.
    func layout(_ entry: Entry) -> PyTorchLayerLayout {
        if let layout = entry.layout { return layout }
        let layout = PyTorchLayerTable.layout(for: entry.layer, device: device, autocast: autocast,
                                              transposed: transposed[entry.layer.path] ?? .init())
        entry.layout = layout
        return layout
    }
}
