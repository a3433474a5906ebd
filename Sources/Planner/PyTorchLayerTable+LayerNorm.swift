import MemoryModel
import Profiles

/// `nn.LayerNorm` as PyTorch 2.15's eager autograd runs it (measured on the CPU with
/// `snnmem_torch.allocations`, python/LAYOUT-NOTES.md §11; the CUDA kernels' outputs on fake CUDA
/// tensors). SpikingJelly's multi-step wrapper runs it once on [T*B, ...].
extension PyTorchLayerTable {
    static func layerNormLayout(_ d: inout PyTorchLayerLayout, _ spec: LayerNormSpec, device: Device) {
        // native_layer_norm: the output, then mean and rstd, one float32 each per row ([T*B, 1, ...]);
        // NativeLayerNormBackward0 saves the input, weight, bias (parameters) and the two statistics.
        d.keepsInput = true
        d.forward = [.output] + LayerMemoryTable.layerNormStatistics(spec).map { .save($0, heldByFinalState: false) }
        guard device == .cpu, spec.affine else {
            // CUDA (and an affine-free CPU layer norm): the input gradient and, with affine, the
            // weight's and bias's, straight from the kernels.
            d.backward = [.inputGradient, .parameterGradients, .releaseOutputGradient, .releaseSaved]
            return
        }
        // The CPU kernel reduces the weight and bias gradients through a zeroed [2 * threads, N]
        // buffer (one dgamma and one dbeta row per thread), made after both gradients and freed
        // before the op returns: 2 x threads x N floats (measured: 320 B for N = 40 on one thread,
        // 640 on two).
        let reduction = BufferDeclaration(name: "gamma_beta.partials", role: .workspace, shape: TensorShape([2, spec.normalizedCount]),
                                          perSample: false, dtype: .float32, perTimestep: false)
        d.backward = [.inputGradient, .parameterGradients, .allocatePerThread(reduction), .free(reduction.name),
                      .releaseOutputGradient, .releaseSaved]
    }

    /// Why a profile's layer norm has no PyTorch layout, or nil. CUDA's autocast runs `layer_norm` in
    /// float32 (a cast copy of a half input, a float32 output feeding the next layers, whose dtypes then
    /// change), which is not modelled; the CPU's runs it in half (`layerNormAutocast`).
    /// On [C, N] tokens PyTorch normalises a transposed view: the contiguous copies it and the next
    /// layer make of it were not measured either.
    public static func layerNormNotModelledReason(_ profile: Profile, runtime: String) -> String? {
        if let layer = profile.allLayers.first(where: { if case .layerNorm(let spec) = $0.kind { return spec.tokens != nil }; return false }) {
            return "layer norm '\(layer.path)' over [C, N] tokens is not modelled in the \(runtime) layout (PyTorch normalises a transposed view; its copies and the next layer's were not measured); plan it with --runtime snnmem"
        }
        guard profile.dtype != .float32 else { return nil }
        // The token form's transposed copies were measured in float32 only.
        if let layer = profile.allLayers.first(where: { if case .layerNorm(let spec) = $0.kind { return spec.tokens != nil }; return false }) {
            return "layer norm '\(layer.path)' over [C, N] tokens under \(profile.dtype.rawValue) autocast is not modelled in the \(runtime) layout (measured in float32 only); plan it in float32 or with --runtime snnmem"
        }
        guard runtime == Runtime.pytorchCUDA.rawValue,
              let layer = profile.allLayers.first(where: { if case .layerNorm = $0.kind { return true }; return false }) else { return nil }
        return "layer norm '\(layer.path)' under \(profile.dtype.rawValue) autocast is not modelled in the \(runtime) layout (CUDA's autocast runs layer_norm in float32 and the next layers on its float32 output); plan it in float32, with --runtime pytorch-cpu or --runtime snnmem"
    }
}
