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
        notModelledReason(profile)
    }

    /// Why this runtime has no model for any strategy on a profile, or nil: every reason so far is
    /// the profile's layers, whatever the strategy (`check` asks once per profile and runtime).
    public func notModelledReason(_ profile: Profile) -> String? {
        guard isPyTorch else { return nil }
        if let layer = PyTorchLayerTable.firstUnsupported(profile.layers) {
            return "layer '\(layer.path)' (\(layer.kind.keyword)) has no PyTorch + SpikingJelly counterpart in the \(rawValue) layout; plan it with --runtime snnmem"
        }
        if let layer = profile.firstLayer(where: { if case .convTranspose = $0.kind { return true }; return false }),
           profile.dtype != .float32 {
            // Autocast's casts around cuDNN's and oneDNN's deconvolutions were not measured.
            return "transposed conv '\(layer.path)' is modelled in float32 only (autocast is not measured); plan it in float32 or with --runtime snnmem"
        }
        if self == .pytorchCPU, let (layer, reason) = Self.firstUnmodelledDeconvolution(profile) {
            return "transposed conv '\(layer.path)' with \(reason) is not modelled in the pytorch-cpu layout; plan it with --runtime snnmem or pytorch-cuda"
        }
        if let reason = PyTorchLayerTable.layerNormNotModelledReason(profile, runtime: rawValue) { return reason }
        if let reason = conv1dWindowNotModelledReason(profile) { return reason }
        if let reason = groupedConvNotModelledReason(profile) { return reason }
        if let net = profile.layers.first(where: { if case .trevsnn = $0.kind { return true }; return false }),
           profile.dtype != .float32 {
            // The Python package measures T-RevSNN in float32 only (its function does not rerun the
            // levels under the forward's autocast), so there is nothing to hold a layout to.
            return "T-RevSNN network '\(net.path)' under \(profile.dtype.rawValue) autocast is not modelled in the \(rawValue) layout (measured in float32 only); plan it in float32 or with --runtime snnmem"
        }
        return nil
    }
}

extension Runtime {
    /// The first transposed conv whose oneDNN deconvolution `OneDNNDeconvolution` does not describe.
    static func firstUnmodelledDeconvolution(_ profile: Profile) -> (Layer, String)? {
        for layer in ParameterLayout.flatten(profile.layers) {
            guard case .convTranspose(let conv) = layer.kind else { continue }
            let deconv = OneDNNDeconvolution(conv: conv, input: layer.inputShape, output: layer.outputShape)
            if let reason = deconv.notModelledReason { return (layer, reason) }
        }
        return nil
    }

    /// Why a pytorch-cpu plan at this batch cannot be made, or nil: a call of a transposed conv on one
    /// sample (batch 1 under sltt, T = 1, or a one-timestep checkpoint segment) runs PyTorch's native
    /// kernel instead of oneDNN's (`OneDNNDeconvolution.runsNativeKernel`), whose buffers were not measured.
    public func oneSampleReason(_ profile: Profile, strategy: Strategy, batch: Int, timesteps: Int, segment: Int?) -> String? {
        guard self == .pytorchCPU, batch == 1 else { return nil }
        let fewestTimesteps: Int
        switch strategy {
        case .sltt: fewestTimesteps = 1
        case .checkpoint:
            let k = segment ?? Strategy.defaultSegment(timesteps: timesteps)
            fewestTimesteps = timesteps % k == 0 ? k : timesteps % k
        default: fewestTimesteps = timesteps
        }
        guard fewestTimesteps == 1 else { return nil }
        for layer in ParameterLayout.flatten(profile.layers) {
            guard case .convTranspose(let conv) = layer.kind,
                  OneDNNDeconvolution(conv: conv, input: layer.inputShape, output: layer.outputShape).runsNativeKernel(samples: 1)
            else { continue }
            return "transposed conv '\(layer.path)' runs on one sample per call at batch 1 under \(strategy.rawValue) at T = \(timesteps), where PyTorch takes its native slow_conv_transpose2d (not measured) instead of oneDNN; plan a batch of 2 or more, or with --runtime snnmem"
        }
        return nil
    }
}

