import MemoryModel
import Yams

/// `branches`: paths on the same input joined by add, concat, and or iand.
///
/// ```yaml
/// - branches:
///     name: block
///     join: concat        # add | concat (channels) | and (a * b) | iand ((1 - a) * b)
///     paths:
///       - []              # the identity
///       - [ {conv: {out: 16, kernel: 3, padding: 1}}, batchnorm, neuron ]
/// ```
extension LayerBuilder {
    static let branchesKeys = ["join", "paths", "name"]

    func buildBranches(_ params: inout YAMLMapping, input: TensorShape, path: String,
                       location: SourceLocation) throws -> (LayerKind, TensorShape) {
        let joins = BranchJoin.allCases.map(\.rawValue).joined(separator: ", ")
        guard params.value("join") != nil else {
            throw params.missingKey("join", example: "add  (one of \(joins))")
        }
        let join = try params.choice("join", default: BranchJoin.add)
        let pathsNode = try params.require("paths", example: "[[], [{conv: {out: 16, kernel: 3, padding: 1}}, batchnorm, neuron]]")
        try params.rejectUnknownKeys(allowed: Self.branchesKeys)
        guard let items = pathsNode.sequence, items.count >= 2 else {
            throw fail("`paths` of a branches block must be a list of at least two paths (each a list of layers, [] for the identity)",
                       fix: "write `paths: [[], [{conv: {out: 16, kernel: 3, padding: 1}}]]`", path: path, at: pathsNode.location)
        }
        if join.keepsOperands && items.count != 2 {
            throw fail("join `\(join.rawValue)` combines exactly two paths (\(join == .and ? "a * b" : "(1 - a) * b")), found \(items.count)",
                       fix: "nest branches blocks to combine more paths", path: path, at: pathsNode.location)
        }
        var paths: [[Layer]] = []
        var outputs: [TensorShape] = []
        for (index, item) in items.enumerated() {
            let (layers, output) = try buildList(item, input: input, parentPath: path + "/path\(index)", context: "branches path \(index)")
            paths.append(layers)
            outputs.append(output)
        }
        guard paths.contains(where: { !$0.isEmpty }) else {
            throw fail("every path of the branches block is empty, so it joins its input with itself",
                       fix: "give at least one path a layer", path: path, at: pathsNode.location)
        }
        let output = try joinedShape(join, outputs, items: Array(items), path: path)
        return (.branches(BranchesSpec(join: join, paths: paths)), output)
    }

    /// The join's output shape, or an error naming the path whose shape does not fit.
    func joinedShape(_ join: BranchJoin, _ outputs: [TensorShape], items: [Node], path: String) throws -> TensorShape {
        let first = outputs[0]
        switch join {
        case .add, .and, .iand:
            for (index, shape) in outputs.enumerated().dropFirst() where shape != first {
                throw fail("path \(index) gives \(shape) but path 0 gives \(first); `\(join.rawValue)` needs equal shapes",
                           fix: "make every path give \(first) (a 1x1 conv with stride and batchnorm maps a shortcut)",
                           path: path + "/path\(index)", at: items[index].location)
            }
            return first
        case .concat:
            var channels = 0
            for (index, shape) in outputs.enumerated() {
                guard shape.rank == 3, first.rank == 3, shape.dims[1] == first.dims[1], shape.dims[2] == first.dims[2] else {
                    throw fail("path \(index) gives \(shape); `concat` joins [channels, height, width] outputs of one resolution (path 0 gives \(first))",
                               fix: "give every path the same height and width (and concatenate before flattening)",
                               path: path + "/path\(index)", at: items[index].location)
                }
                channels += shape.dims[0]
            }
            guard channels <= PlanningLimits.maxDimension else {
                throw fail("the concatenation has \(channels) channels, more than \(PlanningLimits.formatted(PlanningLimits.maxDimension))",
                           fix: "use fewer channels", path: path, at: items[0].location)
            }
            return TensorShape([channels, first.dims[1], first.dims[2]])
        }
    }

    /// Reversible blocks are inverted layer by layer; a fork inside one has no inverse there.
    func refuseBranches(in layers: [Layer], context: String) throws {
        for layer in layers {
            if case .branches = layer.kind {
                throw fail("a branches block inside \(context) cannot be reconstructed by the reversible stage's inverse",
                           fix: "move the branches block out of the reversible stage", path: layer.path, at: layer.location)
            }
            if case .residual(let spec) = layer.kind { try refuseBranches(in: spec.main + spec.shortcut, context: context) }
        }
    }
}
