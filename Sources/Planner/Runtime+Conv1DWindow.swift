import Profiles

extension Runtime {
    /// A conv1d with a window on pytorch-cpu under autocast. Measured (python/LAYOUT-NOTES.md §14): on a
    /// CPU without AVX512-FP16 a float16 convolution is thnn's `_slow_conv2d` (an im2col buffer per call, a
    /// grouped one split into one conv per group and concatenated), not oneDNN's; a bfloat16 conv1d window
    /// runs oneDNN's bf16 primitive on a (1, k) kernel, whose weight-gradient scratchpad the square-kernel
    /// sizing (`OneDNNWeightGradientScratchpad`) does not cover. Neither is declared. On CUDA a conv1d keeps
    /// its half input and weight copies as a conv2d does (planned).
    func conv1dWindowNotModelledReason(_ profile: Profile) -> String? {
        guard self == .pytorchCPU, profile.dtype != .float32,
              let layer = profile.allLayers.first(where: {
                  if case .conv1d(let conv) = $0.kind { return !LayerMemoryTable.isPointwise(conv) || conv.groups != 1 }
                  return false
              }) else { return nil }
        let kernels = profile.dtype == .float16
            ? "a float16 convolution runs thnn's slow conv2d on a CPU without AVX512-FP16, oneDNN's half primitive on one with it; neither was measured on a conv1d window"
            : "oneDNN's bfloat16 weight-gradient scratchpad for a (1, k) kernel is not modelled"
        return "conv1d '\(layer.path)' with a window (kernel, stride, padding or groups) under \(profile.dtype.rawValue) autocast is not modelled in the pytorch-cpu layout (\(kernels)); plan it in float32, with --runtime pytorch-cuda or --runtime snnmem"
    }
}
