import MemoryModel
import Profiles

/// `nn.LayerNorm` as PyTorch 2.15's eager autograd runs it (measured on the CPU with
/// `snnmem_torch.allocations`, python/LAYOUT-NOTES.md §11; the CUDA kernels' outputs on fake CUDA
/// tensors). SpikingJelly's multi-step wrapper runs it once on [T*B, ...].
extension PyTorchLayerTable {
    static func layerNormLayout(_ d: inout PyTorchLayerLayout, _ spec: LayerNormSpec, inputShape: TensorShape, device: Device) {
        // native_layer_norm: the output, then mean and rstd, one float32 each per row ([T*B, 1, ...]);
        // NativeLayerNormBackward0 saves the input, weight, bias (parameters) and the two statistics.
        d.keepsInput = true
        let statistics: [PyTorchStep] = LayerMemoryTable.layerNormStatistics(spec).map { .save($0, heldByFinalState: false) }
        // On [C, N] tokens the op sees the transposed view x.transpose(-1, -2) (`TokenLayerNorm`):
        // it saves that view (no new bytes) but computes on a contiguous copy, made first and freed
        // when it returns; backward copies the output gradient (the next layer's is contiguous,
        // transposed by the view's backward) and the saved input the same way (measured on the CPU,
        // python/LAYOUT-NOTES.md §12; the kernels' copies are aten's shared `expect_contiguous`, not
        // visible on fake CUDA tensors).
        let copiesInput = spec.tokens != nil
        let inputCopy = BufferDeclaration(name: "input.contiguous", role: .workspace, shape: inputShape)
        let gradientCopy = BufferDeclaration(name: "grad_output.contiguous", role: .workspace, shape: inputShape)
        d.forward = copiesInput ? [.allocate(inputCopy), .output] + statistics + [.free(inputCopy.name)] : [.output] + statistics
        let copies: [PyTorchStep] = copiesInput ? [.allocate(gradientCopy), .allocate(inputCopy)] : []
        let freeCopies: [PyTorchStep] = copiesInput ? [.free(inputCopy.name), .free(gradientCopy.name)] : []
        guard device == .cpu, spec.affine else {
            // CUDA (and an affine-free CPU layer norm): the input gradient and, with affine, the
            // weight's and bias's, straight from the kernels.
            d.backward = copies + [.inputGradient, .parameterGradients] + freeCopies + [.releaseOutputGradient, .releaseSaved]
            return
        }
        // The CPU kernel reduces the weight and bias gradients through a zeroed [2 * threads, N]
        // buffer (one dgamma and one dbeta row per thread), made after both gradients and freed
        // before the op returns: 2 x threads x N floats (measured: 320 B for N = 40 on one thread,
        // 640 on two; N = C on tokens).
        let reduction = BufferDeclaration(name: "gamma_beta.partials", role: .workspace, shape: TensorShape([2, spec.normalizedCount]),
                                          perSample: false, dtype: .float32, perTimestep: false)
        d.backward = copies + [.inputGradient, .parameterGradients, .allocatePerThread(reduction), .free(reduction.name)] + freeCopies
            + [.releaseOutputGradient, .releaseSaved]
    }

    /// Why a profile's layer norm has no PyTorch layout, or nil. CUDA's autocast runs `layer_norm` in
    /// float32 (a cast copy of a half input, a float32 output feeding the next layers, whose dtypes then
    /// change), which is not modelled; the CPU's runs it in half (`layerNormAutocast`).
    /// On [C, N] tokens the neighbours that were measured with its transposed view are modelled
    /// (`TransposedTokenNeighbours`) in float32; others are refused naming the layer.
    public static func layerNormNotModelledReason(_ profile: Profile, runtime: String) -> String? {
        if profile.firstLayer(where: TransposedTokenNeighbours.isTokenNorm) != nil, let reason = TransposedTokenNeighbours(profile).refusal {
            return reason
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
