import Profiles

extension Runtime {
    /// A conv1d with a window on pytorch-cpu under autocast: oneDNN's half-precision weight-gradient
    /// scratchpads were measured for square 2-D kernels only (`OneDNNWeightGradientScratchpad`), and
    /// the windowed conv1d was measured in float32 only.
    func conv1dWindowNotModelledReason(_ profile: Profile) -> String? {
        guard self == .pytorchCPU, profile.dtype != .float32,
              let layer = profile.allLayers.first(where: {
                  if case .conv1d(let conv) = $0.kind { return !LayerMemoryTable.isPointwise(conv) || conv.groups != 1 }
                  return false
              }) else { return nil }
        return "conv1d '\(layer.path)' with a window (kernel, stride, padding or groups) under \(profile.dtype.rawValue) autocast is not modelled in the pytorch-cpu layout (measured in float32 only); plan it in float32, with --runtime pytorch-cuda or --runtime snnmem"
    }
}
