import MemoryModel
import Yams

/// The layers of spiking transformers: tensors of [channels, tokens] per sample and timestep.
extension LayerBuilder {
    func requireTokens(_ input: TensorShape, kind: String, path: String, location: SourceLocation) throws -> Int {
        guard input.rank == 2 else {
            throw fail("\(kind) needs a [channels, tokens] input, but receives \(input)",
                       fix: "insert `- tokens` after the convolutional stem to turn [C, H, W] into [C, H*W] tokens", path: path, at: location)
        }
        return input.dims[0]
    }

    func buildTokenLayer(_ kindName: String, params: inout YAMLMapping, input: TensorShape, path: String,
                         location: SourceLocation) throws -> (LayerKind, TensorShape) {
        switch kindName {
        case "conv1d":
            return try buildConv1d(&params, input: input, path: path, location: location)

        case "tokens":
            let (c, h, w) = try requireSpatial(input, kind: "tokens", path: path, location: location)
            try params.rejectUnknownKeys(allowed: ["name"])
            return (.tokens, TensorShape([c, h * w]))

        case "tokenmean":
            let c = try requireTokens(input, kind: "tokenmean", path: path, location: location)
            try params.rejectUnknownKeys(allowed: ["name"])
            return (.tokenMean, TensorShape([c]))

        default:  // attention
            return try buildAttention(&params, input: input, path: path, location: location)
        }
    }

    /// Spikformer's SSA or the Spike-driven Transformer's SDSA: see `AttentionSpec`. As the
    /// reference code: q, k, v convs without bias, the projection's with; every neuron the profile's
    /// default, the attention (SDSA: talking-heads) neuron's threshold `threshold` (0.5).
    func buildAttention(_ params: inout YAMLMapping, input: TensorShape, path: String,
                        location: SourceLocation) throws -> (LayerKind, TensorShape) {
        let c = try requireTokens(input, kind: "attention", path: path, location: location)
        let tokens = input.dims[1]
        let kind = try params.choice("kind", default: AttentionSpec.Kind.ssa)
        let headsNode = params.value("heads")
        let heads = try params.int("heads", example: "12")
        let scale = try params.double("scale", default: 0.125, positive: true)
        let threshold = try params.double("threshold", default: 0.5, positive: true)
        try params.rejectUnknownKeys(allowed: Self.allowedKeys["attention"]!)
        guard c % heads == 0 else {
            throw fail("\(heads) heads do not divide the \(c) channels", fix: "use a number of heads that divides \(c) (Spikformer-4-384 uses 12)",
                       path: path, at: headsNode?.location ?? location)
        }
        if kind == .ssa, (CheckedArithmetic.product([heads, tokens, tokens]) ?? Int.max) > PlanningLimits.maxSampleElements {
            throw fail("the attention map of \(heads) heads over \(tokens) tokens has more than the \(PlanningLimits.formatted(PlanningLimits.maxSampleElements)) elements snnmem plans for one tensor",
                       fix: "use fewer tokens (pool before `tokens`) or fewer heads", path: path, at: headsNode?.location ?? location)
        }
        var attentionNeuron = defaultNeuron
        attentionNeuron.threshold = threshold
        func branch(_ prefix: String, bias: Bool, fires: Bool = true) throws -> [Layer] {
            try chain(path: path, location: location, input: input, steps: [
                (prefix + "_conv", .conv1d(ConvSpec(inChannels: c, outChannels: c, kernel: 1, bias: bias)), input),
                (prefix + "_bn", .batchNorm(channels: c), input),
            ] + (fires ? [(prefix + "_lif", .neuron(defaultNeuron), input)] : []))
        }
        // SDSA's neuron fires on one column sum per channel.
        let (neuronName, neuronShape) = kind == .sdsa ? ("talking_heads_lif", TensorShape([c, 1])) : ("attn_lif", input)
        let spec = AttentionSpec(kind: kind, heads: heads, scale: scale, channels: c, tokens: tokens,
                                 query: try branch("q", bias: false), key: try branch("k", bias: false), value: try branch("v", bias: false),
                                 attentionNeuron: try chain(path: path, location: location, input: neuronShape,
                                                            steps: [(neuronName, .neuron(attentionNeuron), neuronShape)])[0],
                                 projection: try branch("proj", bias: true, fires: kind == .ssa))
        return (.attention(spec), input)
    }
}
