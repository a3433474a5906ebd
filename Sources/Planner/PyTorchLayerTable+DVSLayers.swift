import MemoryModel
import Profiles

/// Dropout, adaptive average pooling and voting as SpikingJelly 2.0 runs them under PyTorch's
/// eager autograd (multi-step modules on [T, B, ...]).
extension PyTorchLayerTable {
    static func dvsLayout(_ d: inout PyTorchLayerLayout, _ layer: Layer, device: Device) {
        let output = layer.outputShape
        switch layer.kind {
        case .dropout:
            // layer.Dropout: mask = F.dropout(ones_like(x_seq[0]), p) on the first call, held by the
            // module until reset_net; x_seq * mask saves the mask (MulBackward0's other).
            let one = { (name: String, role: TensorRole) in
                BufferDeclaration(name: name, role: role, shape: output, perTimestep: false)
            }
            switch device {
            case .cpu:
                // F.dropout on the CPU: a Bernoulli noise tensor, the mask = ones * noise, the noise freed.
                d.forward = [.heldOnce(one("mask", .activation), making: [.allocate(one("ones", .workspace)), .allocate(one("noise", .workspace))],
                                       made: [.free("noise"), .free("ones")]),
                             .output]
            case .cuda:
                // native_dropout's fused kernel: the mask (its output), then its bool keep-mask, dropped at once.
                let keep = BufferDeclaration(name: "keep", role: .workspace, shape: output, dtype: .bool, perTimestep: false)
                d.forward = [.heldOnce(one("mask", .activation), making: [.allocate(one("ones", .workspace))],
                                       made: [.allocate(keep), .free("keep"), .free("ones")]),
                             .output]
            }
            d.backward = [.inputGradient, .releaseSaved, .releaseOutputGradient]
        case .adaptiveAvgPool:
            // _adaptive_avg_pool2d (any output but 1x1) saves its input for the backward's shape.
            d.keepsInput = true
        case .voting:
            // avg_pool1d on x.unsqueeze(1): avg_pool2d saves its (viewed) input.
            d.keepsInput = true
        default:
            preconditionFailure("\(layer.kind.keyword) is not a DVS-network layer")
        }
    }
}
