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
struct LayerTableCache {
    final class Entry {
        let layer: Layer
        let declaration: LayerMemoryDeclaration
        let forwardFlops: Double
        /// Made on first use: only the PyTorch runtimes read it.
        var layout: PyTorchLayerLayout?

        init(_ layer: Layer) {
            self.layer = layer
            declaration = LayerMemoryTable.declaration(for: layer)
            forwardFlops = LayerMemoryTable.forwardFlops(for: layer)
        }
    }

    let device: PyTorchLayerTable.Device
    let autocast: DType?
    private var entries: [String: Entry] = [:]
    /// No two of the profile's layers share a path.
    private var pathsAreUnique = true

    init(profile: Profile, device: PyTorchLayerTable.Device, autocast: DType?) {
        self.device = device
        self.autocast = autocast
        for layer in profile.allLayers {
            if let existing = entries[layer.path] {
                if existing.layer != layer { pathsAreUnique = false }
            } else {
                entries[layer.path] = Entry(layer)
            }
        }
    }

    /// The layer's entry (made here for a layer that is not the profile's).
    mutating func entry(_ layer: Layer) -> Entry {
        if let hit = entries[layer.path], pathsAreUnique || hit.layer == layer { return hit }
        let entry = Entry(layer)
        entries[layer.path] = entry
        return entry
    }

    /// `PyTorchLayerTable.layout(for:device:autocast:)` of an entry's layer on this plan's device
    /// and autocast dtype.
    func layout(_ entry: Entry) -> PyTorchLayerLayout {
        if let layout = entry.layout { return layout }
        let layout = PyTorchLayerTable.layout(for: entry.layer, device: device, autocast: autocast)
        entry.layout = layout
        return layout
    }
}
