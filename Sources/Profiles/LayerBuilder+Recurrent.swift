import MemoryModel
import Yams

/// `recurrent: {out: N, bias: true, neuron: {...}}`: a linear map of [x_t ; s_{t-1}] and a spiking
/// neuron in one layer (`RecurrentSpec`). Kept apart from `buildKind` so that the core switch only
/// forwards to it.
extension LayerBuilder {
    static let recurrentKeys = ["out", "in", "bias", "neuron", "name"]

    func buildRecurrent(_ params: inout YAMLMapping, input: TensorShape, path: String,
                        location: SourceLocation) throws -> (LayerKind, TensorShape) {
        let out = try params.int("out", example: "256")
        let bias = try params.bool("bias", default: true)
        guard input.rank == 1 else {
            throw fail("recurrent needs flat features per timestep, but receives \(input)",
                       fix: "insert `- flatten` before it, or use a sequence input `input: {features: N, perTimestep: true}`",
                       path: path, at: location)
        }
        if let inNode = params.value("in") {
            let declared = try YAMLMapping.integer(inNode, key: "in", min: 1, max: PlanningLimits.maxSampleElements, file: file,
                                                   layerPath: path, context: "recurrent")
            guard declared == input.dims[0] else {
                throw fail("recurrent declares \(declared) input features but receives \(input.dims[0])",
                           fix: "set `in: \(input.dims[0])`, remove `in:` to infer it, or change the layers before it",
                           path: path, at: inNode.location)
            }
        }
        // The neuron's own keys override the profile's default neuron, as a `neuron` layer's do.
        let neuronNode = params.value("neuron")
        let neuron = try neuronNode.map { try ProfileLoader.parseNeuron($0, base: defaultNeuron, file: file, layerPath: path) }
            ?? defaultNeuron
        try params.rejectUnknownKeys(allowed: Self.recurrentKeys)
        switch neuron.type {
        case .lif, .if:
            break
        case .li:
            // Nothing spikes: the feedback would be a real-valued v, another layer than this one.
            throw params.error("a recurrent layer feeds its spikes back, but an li neuron (a leaky integrator) never fires",
                               fix: "use `neuron: {type: lif}` (or if) inside `recurrent:`, and put the li readout after it",
                               at: neuronNode)
        case .plif, .turnoff, .alif:
            throw params.error("a recurrent layer's neuron must be lif or if, found \(neuron.type.rawValue)",
                               fix: "use `neuron: {type: lif}` or `neuron: {type: if}`", at: neuronNode)
        }
        if (CheckedArithmetic.product(out, input.dims[0] + out) ?? Int.max) > PlanningLimits.maxLayerParameters {
            throw fail("a recurrent layer from \(input.dims[0]) to \(out) features has more than the \(PlanningLimits.formatted(PlanningLimits.maxLayerParameters)) weights one layer may have",
                       fix: "use fewer features", path: path, at: location)
        }
        return (.recurrent(RecurrentSpec(inFeatures: input.dims[0], outFeatures: out, bias: bias, neuron: neuron)), TensorShape([out]))
    }
}
