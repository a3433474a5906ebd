import MemoryModel
import Profiles

extension PyTorchLayerTable {
    /// `nn.LayerNorm` under CPU autocast (pytorch-cpu). `layer_norm` is on no CPU autocast list, so it
    /// runs in its half input's dtype: the output and the input gradient are half. With affine the float32
    /// weight makes the kernel mixed-type: mean and rstd stay float32 and the weight and bias gradients go
    /// to `.grad` in float32 (no cast, no ToCopyBackward); without affine mean and rstd are half. The CPU
    /// backward's [2 x threads, N] reduction buffer takes the input's dtype (half). Measured with
    /// `snnmem_torch.allocations` (python/LAYOUT-NOTES.md §14). CUDA's autocast runs `layer_norm` in
    /// float32 instead (a float32 copy of the input saved, a float32 output): refused there
    /// (`layerNormNotModelledReason`).
    static func layerNormAutocast(_ d: inout PyTorchLayerLayout, _ spec: LayerNormSpec) {
        func inInputDType(_ step: PyTorchStep) -> PyTorchStep {
            switch step {
            case .save(var buffer, let held) where !spec.affine:
                buffer.dtype = nil  // the statistics in the half input's dtype
                return .save(buffer, heldByFinalState: held)
            case .allocatePerThread(var buffer):
                buffer.dtype = nil
                return .allocatePerThread(buffer)
            default:
                return step
            }
        }
        d.forward = d.forward.map(inInputDType)
        d.backward = d.backward.map(inInputDType)
    }
}
