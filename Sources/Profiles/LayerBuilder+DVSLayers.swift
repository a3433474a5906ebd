import MemoryModel
import Yams

/// The layers SpikingJelly's DVS and VGG networks need beyond the core ones: `dropout`,
/// `adaptiveavgpool` and `voting`. Kept apart from `buildKind` so that the core switch only
/// forwards to it.
extension LayerBuilder {
    static let dvsKinds = ["dropout", "adaptiveavgpool", "voting"]

    static let dvsAllowedKeys: [String: [String]] = [
        "dropout": ["p", "name"],
        "adaptiveavgpool": ["output", "name"],
        "voting": ["size", "name"],
    ]

    /// nil when `kindName` is not one of `dvsKinds`.
    func buildDVSKind(_ kindName: String, params: inout YAMLMapping, input: TensorShape, path: String,
                      location: SourceLocation) throws -> (LayerKind, TensorShape)? {
        switch kindName {
        case "dropout":
            let pNode = params.value("p")
            // SpikingJelly's default; p = 0 would be no dropout and p = 1 a network that never fires.
            let p = try params.double("p", default: 0.5)
            try params.rejectUnknownKeys(allowed: ["p", "name"])
            guard p > 0, p < 1 else {
                throw params.error("dropout 'p' is \(p), but the probability of zeroing an element must be between 0 and 1 (exclusive)",
                                   fix: "set `p:` to a value such as 0.5, or remove the dropout layer", at: pNode)
            }
            return (.dropout(probability: p), input)

        case "adaptiveavgpool":
            let (c, _, _) = try requireSpatial(input, kind: "adaptiveavgpool", path: path, location: location)
            let outputNode = try params.require("output", example: "[7, 7]")
            try params.rejectUnknownKeys(allowed: ["output", "name"])
            let sizes: [Node]
            if let sequence = outputNode.sequence {
                sizes = Array(sequence)
            } else if outputNode.scalar != nil {
                sizes = [outputNode, outputNode]  // one number: a square output, as PyTorch reads an int
            } else {
                sizes = []
            }
            guard sizes.count == 2 else {
                throw params.error("adaptiveavgpool `output` must be [height, width] or one number, found \(outputNode.displayText)",
                                   fix: "write `output: [7, 7]` or `output: 7`", at: outputNode)
            }
            let oh = try YAMLMapping.integer(sizes[0], key: "output", min: 1, file: file, layerPath: path, context: "adaptiveavgpool")
            let ow = try YAMLMapping.integer(sizes[1], key: "output", min: 1, file: file, layerPath: path, context: "adaptiveavgpool")
            return (.adaptiveAvgPool(outputHeight: oh, outputWidth: ow), TensorShape([c, oh, ow]))

        case "voting":
            let sizeNode = params.value("size")
            let size = try params.int("size", default: 10)  // SpikingJelly's default voting_size
            try params.rejectUnknownKeys(allowed: ["size", "name"])
            guard input.rank == 1 else {
                throw fail("voting averages groups of flat features, but receives \(input)",
                           fix: "put `- flatten` and a linear layer before it", path: path, at: location)
            }
            // avg_pool1d would drop the features past the last whole group: refuse instead of dropping them.
            guard input.dims[0] % size == 0, input.dims[0] >= size else {
                throw params.error("voting groups of \(size) do not divide the \(input.dims[0]) features it receives",
                                   fix: "make the layer before it give a multiple of \(size) features (e.g. \(size * max(1, input.dims[0] / size)))",
                                   at: sizeNode)
            }
            return (.voting(size: size), TensorShape([input.dims[0] / size]))

        default:
            return nil
        }
    }

    /// A reversible stage reconstructs its blocks' inputs by running f and g again, and RevSNN (as
    /// SpikingJelly's `reset_net` before each rerun) would draw a new dropout mask there: the
    /// reconstruction would not invert the forward. Refused rather than planned wrong.
    func refuseDropout(in layers: [Layer], stage: String) throws {
        for layer in layers {
            if case .dropout = layer.kind {
                throw fail("dropout inside a reversible stage would draw another mask when backward reruns `f` and `g` to rebuild their inputs",
                           fix: "move the dropout before or after the `reversible:` stage", path: layer.path, at: layer.location)
            }
            if case .residual(let spec) = layer.kind { try refuseDropout(in: spec.main + spec.shortcut, stage: stage) }
        }
    }
}
