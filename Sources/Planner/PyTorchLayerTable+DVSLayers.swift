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

    /// q = sigmoid(w), one float32 element, saved by SigmoidBackward0.
    static let plifDecay = BufferDeclaration(name: "q", role: .activation, shape: TensorShape([]), perSample: false, dtype: .float32,
                                             perTimestep: false)

    /// ParametricLIF's charge in SpikingJelly's CPU reference loop (q = sigmoid(w) requires grad):
    /// decay_input: h = v + (x - (v - v_reset)) * q, whose product saves x - (v - v_reset) each
    /// timestep (for q's gradient); without: h = v - (v - v_reset) * q + x, saving v - v_reset.
    /// `before` runs up to h, `after` frees what h was made from. `perTimestepDecay`: SpikingJelly's
    /// plain reference loop (a half v under autocast) computes q = sigmoid(w) again at every step.
    static func plifCharge(_ spec: NeuronSpec, _ output: TensorShape, perTimestepDecay: Bool) -> (before: [PyTorchStep], after: [PyTorchStep]) {
        let step = { (name: String, role: TensorRole) in BufferDeclaration(name: name, role: role, shape: output) }
        let decay: [PyTorchStep] = perTimestepDecay ? [.save(plifDecay, heldByFinalState: false)] : []
        if spec.decayInput {
            return (decay + [.allocate(step("v-reset", .workspace)), .save(step("x-(v-reset)", .neuronState), heldByFinalState: false),
                     .free("v-reset"), .allocate(step("*q", .workspace))],
                    [.free("*q")])
        }
        return (decay + [.save(step("v-reset", .neuronState), heldByFinalState: false), .allocate(step("*q", .workspace)),
                 .allocate(step("v-*q", .workspace)), .free("*q")],
                [.free("v-*q")])
    }

    /// ParametricLIF's weight: on the CPU the reference loop computes q = sigmoid(w) once per
    /// forward call (SigmoidBackward saves the one-element q); on CUDA the registered op saves w
    /// itself (a parameter, no new bytes) and its backward returns w's gradient. Either way w's
    /// gradient is accumulated after the input gradient.
    static func plifWeight(_ d: inout PyTorchLayerLayout, device: Device, perTimestepDecay: Bool) {
        if device == .cpu && !perTimestepDecay { d.forward.insert(.save(plifDecay, heldByFinalState: false), at: 0) }
        if let index = d.backward.firstIndex(of: .inputGradient) {
            d.backward.insert(.parameterGradients, at: index + 1)
        } else {
            d.backward.append(.parameterGradients)
        }
    }
}
