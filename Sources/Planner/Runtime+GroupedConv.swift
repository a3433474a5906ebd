import MemoryModel
import Profiles

extension Runtime {
    /// A grouped or depthwise conv2d outside a T-RevSNN network (whose depthwise convs are modelled with
    /// it) that the PyTorch layouts do not cover, with the reason naming the layer and the case.
    /// Measured (python/LAYOUT-NOTES.md §15), float32 only:
    /// - CUDA: cuDNN's grouped convolution saves its input and weight as a dense one does (fake CUDA).
    /// - CPU: oneDNN's grouped and depthwise primitives reorder and allocate as its dense one
    ///   (`PyTorchLayerTable`'s conv layout) for kernels 1 and 3 with "same" padding, strides 1 and 2,
    ///   maps at least as wide as the kernel, depthwise convs over a multiple of 16 channels and grouped
    ///   ones over multiples of 8 channels per group (as many out as in at stride 2). Elsewhere oneDNN
    ///   pads the channels of its reorders to 16-channel blocks (12 depthwise channels), leaves the
    ///   blocked primitives for its gemm one, which books an im2col scratchpad and skips the reorders
    ///   (6 channels per group, a 5x5 depthwise kernel, a 1x1 one at stride 2, a 2x2 map under a 3x3
    ///   kernel), or books a scratchpad for the input gradient (16 -> 32 channels per group at stride 2);
    ///   none of them is declared.
    func groupedConvNotModelledReason(_ profile: Profile) -> String? {
        guard isPyTorch else { return nil }
        for layer in ParameterLayout.flatten(profile.layers) {
            guard case .conv(let conv) = layer.kind, conv.groups > 1 else { continue }
            let kind = conv.groups == conv.inChannels && conv.outChannels == conv.inChannels ? "depthwise" : "grouped (groups \(conv.groups))"
            let what = "\(kind) conv '\(layer.path)'"
            if profile.dtype != .float32 {
                return "\(what) under \(profile.dtype.rawValue) autocast is not modelled in the \(rawValue) layout (grouped convs were measured in float32 only); plan it in float32 or with --runtime snnmem"
            }
            guard self == .pytorchCPU, let reason = Self.oneDNNGroupedReason(conv, input: layer.inputShape) else { continue }
            return "\(what) with \(reason) is not modelled in the pytorch-cpu layout (oneDNN takes other primitives there, whose buffers were not measured); plan it with --runtime pytorch-cuda or --runtime snnmem"
        }
        return nil
    }

    /// Why oneDNN's grouped/depthwise conv on this shape is outside what was measured, or nil.
    static func oneDNNGroupedReason(_ conv: ConvSpec, input: TensorShape) -> String? {
        let depthwise = conv.groups == conv.inChannels && conv.outChannels == conv.inChannels
        if conv.kernel != 1 && conv.kernel != 3 { return "kernel \(conv.kernel) (measured: 1 and 3)" }
        if conv.padding != conv.kernel / 2 { return "padding \(conv.padding) (measured: \(conv.kernel / 2), \"same\" padding)" }
        if conv.stride > 2 { return "stride \(conv.stride) (measured: 1 and 2)" }
        let (height, width) = (input.dims[1], input.dims[2])
        if min(height, width) < conv.kernel { return "a \(height)x\(width) input under a \(conv.kernel)x\(conv.kernel) kernel (gemm path)" }
        if depthwise {
            if conv.inChannels % 16 != 0 { return "\(conv.inChannels) channels (measured: multiples of 16)" }
            // Its weight gradient leaves the reorders for the gemm path (a 1792 B scratchpad at 32 channels, 16x16).
            if conv.kernel == 1 && conv.stride == 2 { return "a 1x1 kernel at stride 2 (weight gradient on the gemm path)" }
        } else {
            let (perGroupIn, perGroupOut) = (conv.inChannels / conv.groups, conv.outChannels / conv.groups)
            if perGroupIn % 8 != 0 || perGroupOut % 8 != 0 {
                return "\(perGroupIn) input and \(perGroupOut) output channels per group (measured: multiples of 8)"
            }
            // 16 -> 32 channels per group at stride 2: the input gradient's primitive books a scratchpad
            // (61488 B on 8x8, 127024 B on 16x16, 4 samples) and allocates in another order.
            if conv.stride == 2 && perGroupOut != perGroupIn {
                return "stride 2 and \(perGroupOut) output channels per group from \(perGroupIn) (input gradient's scratchpad)"
            }
        }
        return nil
    }
}
