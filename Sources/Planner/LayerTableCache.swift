import MemoryModel
import Profiles

/// Each layer's table entries (`LayerMemoryTable`'s declaration and FLOPs, `PyTorchLayerTable`'s
/// layout), made once per plan: a walk asks for them again at every timestep, every
/// recomputation and in backward, and making them builds arrays of buffer declarations each time.
/// Keyed by layer path; a hit also needs the same layer, so that two layers sharing a path (a
/// hand-built profile may have them) each get their own entries. Entries are objects so that a
/// lookup hands out a reference instead of copying a layer and its declarations.
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

    init(device: PyTorchLayerTable.Device, autocast: DType?) {
        self.device = device
        self.autocast = autocast
    }

    /// The layer's entry, made on its first use.
    mutating func entry(_ layer: Layer) -> Entry {
        if let hit = entries[layer.path], hit.layer == layer { return hit }
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
