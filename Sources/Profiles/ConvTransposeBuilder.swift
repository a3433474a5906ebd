import MemoryModel
import Yams

/// `convtranspose: {out: 16, kernel: 2, stride: 2}`: a transposed convolution, whose output is
/// (H - 1) * stride - 2 * padding + kernel high (and as wide). No output padding, groups or dilation.
extension LayerBuilder {
    static let convTransposeKeys = ["out", "in", "kernel", "stride", "padding", "bias", "name"]

    func buildConvTranspose(_ params: inout YAMLMapping, input: TensorShape, path: String,
                            location: SourceLocation) throws -> (LayerKind, TensorShape) {
        let (c, h, w) = try requireSpatial(input, kind: "convtranspose", path: path, location: location)
        let out = try params.int("out", example: "16")
        let kernel = try params.int("kernel", example: "2")
        let stride = try params.int("stride", default: 1)
        let padding = try params.int("padding", default: 0, min: 0)
        let bias = try params.bool("bias", default: false)
        if let inNode = params.value("in") {
            let declared = try YAMLMapping.integer(inNode, key: "in", min: 1, file: file, layerPath: path, context: "convtranspose")
            guard declared == c else {
                throw fail("convtranspose declares \(declared) input channels but receives \(c)",
                           fix: "set `in: \(c)` or remove `in:` to infer it", path: path, at: inNode.location)
            }
        }
        try params.rejectUnknownKeys(allowed: Self.convTransposeKeys)
        guard padding < kernel else {
            throw fail("padding \(padding) is not smaller than the kernel \(kernel)", fix: "use padding at most \(kernel - 1)",
                       path: path, at: location)
        }
        let hOut = CheckedArithmetic.product(h - 1, stride).map { $0 - 2 * padding + kernel } ?? Int.max
        let wOut = CheckedArithmetic.product(w - 1, stride).map { $0 - 2 * padding + kernel } ?? Int.max
        guard hOut >= 1, wOut >= 1, hOut <= PlanningLimits.maxDimension, wOut <= PlanningLimits.maxDimension else {
            throw fail("a \(kernel)x\(kernel) transposed conv with stride \(stride) and padding \(padding) gives a \(hOut)x\(wOut) output from \(h)x\(w)",
                       fix: "use less padding or a smaller stride", path: path, at: location)
        }
        if (CheckedArithmetic.product([out, c, kernel, kernel]) ?? Int.max) > PlanningLimits.maxLayerParameters {
            throw fail("a \(kernel)x\(kernel) transposed conv from \(c) to \(out) channels has more than the \(PlanningLimits.formatted(PlanningLimits.maxLayerParameters)) weights one layer may have",
                       fix: "use fewer channels or a smaller kernel", path: path, at: location)
        }
        let spec = ConvSpec(inChannels: c, outChannels: out, kernel: kernel, stride: stride, padding: padding, groups: 1, bias: bias)
        return (.convTranspose(spec), TensorShape([out, hOut, wOut]))
    }
}
