import MemoryModel
import Yams

/// `conv1d` over tokens ([channels, tokens] per sample): PyTorch's nn.Conv1d with a kernel, stride, zero
/// padding and groups, as `conv` has them in two dimensions (no dilation, as `conv`).
extension LayerBuilder {
    func buildConv1d(_ params: inout YAMLMapping, input: TensorShape, path: String,
                     location: SourceLocation) throws -> (LayerKind, TensorShape) {
        let c = try requireTokens(input, kind: "conv1d", path: path, location: location)
        let tokens = input.dims[1]
        let out = try params.int("out", example: "384")
        let kernel = try params.int("kernel", default: 1)
        let stride = try params.int("stride", default: 1)
        let padding = try params.int("padding", default: 0, min: 0)
        let groups = try params.int("groups", default: 1)
        let bias = try params.bool("bias", default: true)
        if let inNode = params.value("in") {
            let declared = try YAMLMapping.integer(inNode, key: "in", min: 1, file: file, layerPath: path, context: "conv1d")
            guard declared == c else {
                throw fail("conv1d declares \(declared) input channels but receives \(c)",
                           fix: "set `in: \(c)` or remove `in:` to infer it", path: path, at: inNode.location)
            }
        }
        try params.rejectUnknownKeys(allowed: Self.allowedKeys["conv1d"]!)
        guard c % groups == 0, out % groups == 0 else {
            throw fail("groups = \(groups) must divide both the input channels (\(c)) and `out` (\(out))",
                       fix: "choose groups dividing \(c) and \(out) (groups = \(c) with out = \(c) is depthwise)", path: path, at: location)
        }
        guard tokens + 2 * padding >= kernel else {
            throw fail("a kernel of \(kernel) does not fit \(tokens) tokens with padding \(padding)",
                       fix: "use a smaller kernel or more padding", path: path, at: location)
        }
        guard padding < kernel else {
            throw fail("padding \(padding) is not smaller than the kernel \(kernel)", fix: "use padding at most \(kernel - 1)", path: path, at: location)
        }
        if (CheckedArithmetic.product([out, c / groups, kernel]) ?? Int.max) > PlanningLimits.maxLayerParameters {
            throw fail("a conv1d of kernel \(kernel) from \(c) to \(out) channels has more than the \(PlanningLimits.formatted(PlanningLimits.maxLayerParameters)) weights one layer may have",
                       fix: "use fewer channels or a smaller kernel", path: path, at: location)
        }
        let spec = ConvSpec(inChannels: c, outChannels: out, kernel: kernel, stride: stride, padding: padding, groups: groups, bias: bias)
        return (.conv1d(spec), TensorShape([out, (tokens + 2 * padding - kernel) / stride + 1]))
    }
}
