import Profiles

/// Which program runs the training step a plan describes. The schedules are the same for every
/// runtime; what differs is what each layer allocates and keeps, and the order layers run in:
/// snnmem's engine is time-major (every layer for one timestep, then the next), SpikingJelly's
/// multi-step modules are layer-major (one layer over all T timesteps as a [T*B, ...] batch).
public enum Runtime: String, CaseIterable, Codable, Sendable {
    /// snnmem's own CPU engine: `LayerMemoryTable`, exact against `snnmem run`.
    case snnmem
    /// PyTorch eager autograd with SpikingJelly's multi-step modules on CUDA, where a LIF/IF
    /// neuron over all timesteps is one fused autograd op (`PyTorchLayerTable`).
    case pytorchCUDA = "pytorch-cuda"
    /// The same network on the CPU, where SpikingJelly's neuron is a Python loop over timesteps
    /// under autograd and keeps other tensors (`PyTorchLayerTable`).
    case pytorchCPU = "pytorch-cpu"

    /// What `plan`, `max-batch`, `sweep` and `check` describe unless told otherwise: the run users make.
    public static let userDefault = Runtime.pytorchCUDA

    public var isPyTorch: Bool { self != .snnmem }

    /// How this runtime's numbers are judged, for the reports.
    public var summary: String {
        switch self {
        case .snnmem: return "snnmem's CPU engine (what `snnmem run` measures)"
        case .pytorchCUDA: return "PyTorch + SpikingJelly multi-step on CUDA"
        case .pytorchCPU: return "PyTorch + SpikingJelly multi-step on the CPU"
        }
    }

    /// Why this runtime has no model for a strategy on a profile, or nil when it has one.
    public func notModelledReason(_ strategy: Strategy, _ profile: Profile) -> String? {
        guard isPyTorch else { return nil }
        if let layer = PyTorchLayerTable.firstUnsupported(profile.layers) {
            return "layer '\(layer.path)' (\(layer.kind.keyword)) has no PyTorch + SpikingJelly counterpart in the \(rawValue) layout; plan it with --runtime snnmem"
        }
        if let layer = profile.firstLayer(where: { if case .convTranspose = $0.kind { return true }; return false }),
           self == .pytorchCPU || profile.dtype != .float32 {
            // oneDNN's CPU deconvolution books a scratchpad and reorders into padded blocked layouts
            // whose sizes were not measured into PyTorchLayerTable; autocast's casts neither.
            return "transposed conv '\(layer.path)' is modelled on pytorch-cuda in float32 only (the CPU's oneDNN deconvolution and autocast are not measured); plan it with --runtime snnmem or pytorch-cuda"
        }
        if let reason = PyTorchLayerTable.layerNormNotModelledReason(profile, runtime: rawValue) { return reason }
        if let reason = conv1dWindowNotModelledReason(profile) { return reason }
        if let net = profile.layers.first(where: { if case .trevsnn = $0.kind { return true }; return false }),
           profile.dtype != .float32 {
            // The Python package measures T-RevSNN in float32 only (its function does not rerun the
            // levels under the forward's autocast), so there is nothing to hold a layout to.
            return "T-RevSNN network '\(net.path)' under \(profile.dtype.rawValue) autocast is not modelled in the \(rawValue) layout (measured in float32 only); plan it in float32 or with --runtime snnmem"
        }
        return nil
    }
}
