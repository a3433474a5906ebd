import MemoryModel
import Yams

/// Turns the `layers:` list into `Layer`s, inferring every shape and rejecting shapes that do not fit.
struct LayerBuilder {
    let file: String
    let defaultNeuron: NeuronSpec
    /// Layers built so far, shared by the nested builds of one profile.
    let budget = LayerBudget()

    static let kinds = ["conv", "batchnorm", "neuron", "avgpool", "maxpool", "globalavgpool", "flatten", "linear",
                        "upsample", "scale", "residual", "branches", "repeat", "reversible", "trevsnn", "convtranspose",
                        "conv1d", "tokens", "tokenmean", "attention", "layernorm", "recurrent"] + dvsKinds

    /// The keys each layer kind accepts; anything else is a typo to report, not to ignore.
    static let allowedKeys: [String: [String]] = [
        "conv": ["out", "in", "kernel", "stride", "padding", "groups", "bias", "name"],
        "batchnorm": ["features", "name"],
        "neuron": ["type", "tau", "threshold", "vReset", "reset", "detachReset", "surrogate", "decayInput", "rho", "beta", "name"],
        "avgpool": ["kernel", "stride", "padding", "name"],
        "maxpool": ["kernel", "stride", "padding", "name"],
        "globalavgpool": ["name"],
        "flatten": ["name"],
        "linear": ["out", "in", "bias", "name"],
        "upsample": ["factor", "name"],
        "scale": ["initial", "name"],
        "residual": ["main", "shortcut", "name"],
        "branches": LayerBuilder.branchesKeys,
        "convtranspose": LayerBuilder.convTransposeKeys,
        "repeat": ["times", "layers", "name"],
        "reversible": ["blocks", "f", "g", "name"],
        "trevsnn": ["levels", "kernel", "expansion", "alpha", "layerScale", "classes", "neuron", "name"],
        "conv1d": ["out", "in", "kernel", "stride", "padding", "groups", "bias", "name"],
        "tokens": ["name"],
        "tokenmean": ["name"],
        "attention": ["kind", "heads", "scale", "threshold", "name"],
        "layernorm": LayerBuilder.layerNormKeys,
        "recurrent": LayerBuilder.recurrentKeys,
    ].merging(dvsAllowedKeys) { own, _ in own }

    func buildList(_ node: Node, input: TensorShape, parentPath: String, context: String) throws -> (layers: [Layer], output: TensorShape) {
        guard let sequence = node.sequence else {
            throw ProfileError(file: file, location: node.location, layerPath: parentPath.isEmpty ? nil : parentPath,
                               problem: "\(context) must be a list of layers, found \(node.kindName)",
                               fix: "write each layer on its own line starting with `- `, e.g. `- conv: {out: 64, kernel: 3}`")
        }
        var layers: [Layer] = []
        var shape = input
        var names: Set<String> = []
        for (index, item) in sequence.enumerated() {
            let built = try buildEntry(item, index: index, input: shape, parentPath: parentPath)
            for layer in built {
                if names.contains(layer.name) {
                    throw ProfileError(file: file, location: layer.location, layerPath: layer.path,
                                       problem: "two layers in the same list are named '\(layer.name)'",
                                       fix: "give each layer a unique `name:`")
                }
                names.insert(layer.name)
                layers.append(layer)
                shape = layer.outputShape
            }
            if let last = layers.last, case .trevsnn = last.kind, index != sequence.count - 1 {
                throw ProfileError(file: file, location: sequence[index + 1].location, layerPath: last.path,
                                   problem: "a trevsnn network has its own classifier heads, so no layer may follow it",
                                   fix: "remove the layers after `trevsnn:`, or set its `classes:`")
            }
        }
        return (layers, shape)
    }

    /// One list entry: `- flatten`, `- conv: {...}`, or a construct. `repeat` yields several layers.
    func buildEntry(_ node: Node, index: Int, input: TensorShape, parentPath: String) throws -> [Layer] {
        let kindName: String
        var paramsNode: Node?
        let location = node.location
        switch node {
        case .scalar(let scalar):
            kindName = scalar.string
        case .mapping(let mapping):
            guard mapping.count == 1, let key = mapping.keys.first?.scalar?.string else {
                let keys = mapping.keys.compactMap { $0.scalar?.string }.joined(separator: ", ")
                throw ProfileError(file: file, location: location, layerPath: parentPath.isEmpty ? nil : parentPath,
                                   problem: "a layer entry must have exactly one kind, found the keys \(keys)",
                                   fix: "write one layer per list item, with its settings nested: `- conv: {out: 64, kernel: 3}`")
            }
            kindName = key
            paramsNode = mapping.values.first
            if let value = paramsNode, case .scalar(let s) = value, s.string.isEmpty || s.string == "~" || s.string == "null" {
                paramsNode = nil
            }
        default:
            throw ProfileError(file: file, location: location, layerPath: parentPath.isEmpty ? nil : parentPath,
                               problem: "a layer entry must be a layer kind or a mapping, found \(node.kindName)",
                               fix: "write `- KIND` or `- KIND: {settings}`")
        }
        guard Self.kinds.contains(kindName) else {
            let guess = Self.kinds.min(by: { editDistance($0, kindName) < editDistance($1, kindName) })!
            let close = editDistance(guess, kindName) <= 3 || kindName.lowercased().hasPrefix(guess)
            let hint = close ? " (did you mean '\(guess)'?)" : ""
            throw ProfileError(file: file, location: location, layerPath: join(parentPath, "\(kindName)\(index)"),
                               problem: "unknown layer kind '\(kindName)'\(hint)",
                               fix: "use one of: \(Self.kinds.joined(separator: ", "))")
        }
        var params = try paramsNode.map { try YAMLMapping($0, file: file, layerPath: join(parentPath, "\(kindName)\(index)"), context: kindName) }
            // The basic resolver, as the profile's own nodes: `.implicit` would build Yams's default
            // one, compiling its regular expressions, for this empty mapping.
            ?? YAMLMapping(.mapping(Node.Mapping([], Tag(.implicit, .basic), .any, node.mark)), file: file,
                           layerPath: join(parentPath, "\(kindName)\(index)"), context: kindName)
        let name = try params.string("name", default: "\(kindName)\(index)") ?? "\(kindName)\(index)"
        if name.isEmpty || name.contains("/") {
            throw params.error("layer name '\(name)' is empty or contains '/'", fix: "use a name without slashes")
        }
        let path = join(parentPath, name)
        params = YAMLMapping(rebinding: params, layerPath: path)
        // After the rebinding, so a misspelt key is reported under the `name:` the user gave.
        try params.rejectUnknownKeys(allowed: Self.allowedKeys[kindName]!)

        if kindName == "repeat" {
            return try buildRepeat(&params, name: name, input: input, parentPath: parentPath, location: location)
        }
        let (kind, output) = try buildKind(kindName, params: &params, input: input, path: path, location: location)
        return [try admit(Layer(name: name, path: path, location: location, kind: kind, inputShape: input, outputShape: output))]
    }

    func join(_ parent: String, _ name: String) -> String { parent.isEmpty ? name : parent + "/" + name }

    func fail(_ problem: String, fix: String, path: String, at location: SourceLocation) -> ProfileError {
        ProfileError(file: file, location: location, layerPath: path, problem: problem, fix: fix)
    }

    func requireSpatial(_ input: TensorShape, kind: String, path: String, location: SourceLocation) throws -> (c: Int, h: Int, w: Int) {
        guard input.rank == 3 else {
            throw fail("\(kind) needs a [channels, height, width] input, but receives \(input) (already flattened)",
                       fix: "move the \(kind) before the flatten layer", path: path, at: location)
        }
        return (input.dims[0], input.dims[1], input.dims[2])
    }

    func buildKind(_ kindName: String, params: inout YAMLMapping, input: TensorShape, path: String,
                   location: SourceLocation) throws -> (LayerKind, TensorShape) {
        switch kindName {
        case "conv":
            let (c, h, w) = try requireSpatial(input, kind: "conv", path: path, location: location)
            let out = try params.int("out", example: "64")
            let kernel = try params.int("kernel", example: "3")
            let stride = try params.int("stride", default: 1)
            let padding = try params.int("padding", default: 0, min: 0)
            let groups = try params.int("groups", default: 1)
            let bias = try params.bool("bias", default: false)
            if let inNode = params.value("in") {
                let declared = try YAMLMapping.integer(inNode, key: "in", min: 1, file: file, layerPath: path, context: "conv")
                guard declared == c else {
                    throw fail("conv declares \(declared) input channels but receives \(c)",
                               fix: "set `in: \(c)` or remove `in:` to infer it", path: path, at: inNode.location)
                }
            }
            try params.rejectUnknownKeys(allowed: ["out", "in", "kernel", "stride", "padding", "groups", "bias", "name"])
            guard c % groups == 0, out % groups == 0 else {
                throw fail("groups = \(groups) must divide both the input channels (\(c)) and `out` (\(out))",
                           fix: "choose groups dividing \(c) and \(out) (groups = \(c) with out = \(c) is depthwise)", path: path, at: location)
            }
            let hOut = (h + 2 * padding - kernel) / stride + 1
            let wOut = (w + 2 * padding - kernel) / stride + 1
            guard h + 2 * padding >= kernel, w + 2 * padding >= kernel, hOut >= 1, wOut >= 1 else {
                throw fail("a \(kernel)x\(kernel) kernel does not fit a \(h)x\(w) input with padding \(padding)",
                           fix: "use a smaller kernel, more padding, or fewer pooling layers before this one", path: path, at: location)
            }
            guard padding < kernel else {
                throw fail("padding \(padding) is not smaller than the kernel \(kernel)", fix: "use padding at most \(kernel - 1)", path: path, at: location)
            }
            let spec = ConvSpec(inChannels: c, outChannels: out, kernel: kernel, stride: stride, padding: padding, groups: groups, bias: bias)
            if (CheckedArithmetic.product([out, c / groups, kernel, kernel]) ?? Int.max) > PlanningLimits.maxLayerParameters {
                throw fail("a \(kernel)x\(kernel) conv from \(c) to \(out) channels has more than the \(PlanningLimits.formatted(PlanningLimits.maxLayerParameters)) weights one layer may have",
                           fix: "use fewer channels or a smaller kernel", path: path, at: location)
            }
            return (.conv(spec), TensorShape([out, hOut, wOut]))

        case "batchnorm":
            if let featuresNode = params.value("features") {
                let declared = try YAMLMapping.integer(featuresNode, key: "features", min: 1, file: file, layerPath: path, context: "batchnorm")
                guard declared == input.dims[0] else {
                    throw fail("batchnorm declares \(declared) features but receives \(input.dims[0]) channels",
                               fix: "set `features: \(input.dims[0])` or remove it to infer it", path: path, at: featuresNode.location)
                }
            }
            try params.rejectUnknownKeys(allowed: ["features", "name"])
            return (.batchNorm(channels: input.dims[0]), input)

        case "neuron":
            let node = params.node
            // The neuron's own keys override the profile's default neuron; parseNeuron checks them.
            let spec = try ProfileLoader.parseNeuron(node, base: defaultNeuron, file: file, layerPath: path)
            return (.neuron(spec), input)

        case "avgpool", "maxpool", "globalavgpool":
            let (c, h, w) = try requireSpatial(input, kind: kindName, path: path, location: location)
            let global = kindName == "globalavgpool"
            if global && h != w {
                throw fail("global average pooling needs a square input, found \(h)x\(w)",
                           fix: "make the input square or use `avgpool` with an explicit kernel", path: path, at: location)
            }
            let kernel = global ? h : try params.int("kernel", example: "2")
            let stride = global ? h : try params.int("stride", default: kernel)
            let padding = global ? 0 : try params.int("padding", default: 0, min: 0)
            try params.rejectUnknownKeys(allowed: global ? ["name"] : ["kernel", "stride", "padding", "name"])
            guard padding * 2 <= kernel else {
                throw fail("padding \(padding) is more than half the pooling kernel \(kernel)",
                           fix: "use padding at most \(kernel / 2)", path: path, at: location)
            }
            let hOut = (h + 2 * padding - kernel) / stride + 1
            let wOut = (w + 2 * padding - kernel) / stride + 1
            guard h + 2 * padding >= kernel, w + 2 * padding >= kernel, hOut >= 1, wOut >= 1 else {
                throw fail("a \(kernel)x\(kernel) pooling window does not fit a \(h)x\(w) input",
                           fix: "use a smaller kernel or remove a pooling layer before this one", path: path, at: location)
            }
            let spec = PoolSpec(kernel: kernel, stride: stride, padding: padding, isGlobal: global)
            let kind: LayerKind = kindName == "maxpool" ? .maxPool(spec) : .avgPool(spec)
            return (kind, TensorShape([c, hOut, wOut]))

        case "flatten":
            try params.rejectUnknownKeys(allowed: ["name"])
            return (.flatten, TensorShape([input.elementCount]))

        case "linear":
            let out = try params.int("out", example: "10")
            let bias = try params.bool("bias", default: true)
            guard input.rank == 1 else {
                throw fail("linear needs a flat input, but receives \(input)",
                           fix: "insert `- flatten` before this linear layer", path: path, at: location)
            }
            if let inNode = params.value("in") {
                let declared = try YAMLMapping.integer(inNode, key: "in", min: 1, max: PlanningLimits.maxSampleElements, file: file, layerPath: path, context: "linear")
                guard declared == input.dims[0] else {
                    throw fail("linear declares \(declared) input features but receives \(input.dims[0])",
                               fix: "set `in: \(input.dims[0])`, remove `in:` to infer it, or change the layers before it",
                               path: path, at: inNode.location)
                }
            }
            try params.rejectUnknownKeys(allowed: ["out", "in", "bias", "name"])
            if (CheckedArithmetic.product(out, input.dims[0]) ?? Int.max) > PlanningLimits.maxLayerParameters {
                throw fail("a linear layer from \(input.dims[0]) to \(out) features has more than the \(PlanningLimits.formatted(PlanningLimits.maxLayerParameters)) weights one layer may have",
                           fix: "use fewer features (pool before flattening)", path: path, at: location)
            }
            return (.linear(LinearSpec(inFeatures: input.dims[0], outFeatures: out, bias: bias)), TensorShape([out]))

        case "upsample":
            let (c, h, w) = try requireSpatial(input, kind: "upsample", path: path, location: location)
            let factor = try params.int("factor", example: "2")
            try params.rejectUnknownKeys(allowed: ["factor", "name"])
            return (.upsample(factor: factor), TensorShape([c, h * factor, w * factor]))

        case "scale":
            let initial = try params.double("initial", default: 1e-6)
            try params.rejectUnknownKeys(allowed: ["initial", "name"])
            return (.scale(initial: initial), input)

        case "residual":
            let mainNode = try params.require("main", example: "[...]  (the residual branch's layers)")
            let (main, mainOut) = try buildList(mainNode, input: input, parentPath: path + "/main", context: "residual `main`")
            var shortcut: [Layer] = []
            var shortcutOut = input
            if let shortcutNode = params.value("shortcut") {
                (shortcut, shortcutOut) = try buildList(shortcutNode, input: input, parentPath: path + "/shortcut", context: "residual `shortcut`")
            }
            try params.rejectUnknownKeys(allowed: ["main", "shortcut", "name"])
            guard !main.isEmpty else {
                throw fail("a residual block needs at least one layer in `main`", fix: "list the branch's layers under `main:`", path: path, at: location)
            }
            guard mainOut == shortcutOut else {
                throw fail("the residual branch gives \(mainOut) but the shortcut gives \(shortcutOut); they must match to be added",
                           fix: shortcut.isEmpty
                               ? "add a `shortcut:` (e.g. a 1x1 conv with stride and batchnorm) that maps \(input) to \(mainOut)"
                               : "make the shortcut's output \(mainOut)",
                           path: path, at: location)
            }
            return (.residual(ResidualSpec(main: main, shortcut: shortcut)), mainOut)

        case "branches":
            return try buildBranches(&params, input: input, path: path, location: location)

        case "convtranspose":
            return try buildConvTranspose(&params, input: input, path: path, location: location)

        case "reversible":
            return try buildReversible(&params, input: input, path: path, location: location)

        case "trevsnn":
            return try buildTRev(&params, input: input, path: path, location: location)

        case "layernorm":
            return try buildLayerNorm(&params, input: input, path: path, location: location)
        case "recurrent":
            return try buildRecurrent(&params, input: input, path: path, location: location)

        case "conv1d", "tokens", "tokenmean", "attention":
            return try buildTokenLayer(kindName, params: &params, input: input, path: path, location: location)

        default:
            if let built = try buildDVSKind(kindName, params: &params, input: input, path: path, location: location) { return built }
            preconditionFailure("layer kind \(kindName) is listed but not built")
        }
    }

    func buildRepeat(_ params: inout YAMLMapping, name: String, input: TensorShape, parentPath: String,
                     location: SourceLocation) throws -> [Layer] {
        let timesNode = params.value("times")
        let times = try params.int("times", max: PlanningLimits.maxLayers, example: "2")
        let body = try params.require("layers", example: "[...]  (the layers to repeat)")
        try params.rejectUnknownKeys(allowed: ["times", "layers", "name"])
        var layers: [Layer] = []
        var shape = input
        let builtBefore = budget.built
        for copy in 0..<times {
            let (built, output) = try buildList(body, input: shape, parentPath: join(parentPath, "\(name).\(copy)"), context: "repeat `layers`")
            if copy == 0 {
                try budget.admitCopies(requested: times, alreadyBuilt: 1, each: budget.built - builtBefore, key: "times", node: timesNode ?? params.node, file: file,
                                       layerPath: join(parentPath, name))
            }
            // Repeated layers are spliced into the parent list; their names carry the copy number.
            layers += built.map { layer in
                var renamed = layer
                renamed.name = "\(name).\(copy)/\(layer.name)"
                return renamed
            }
            shape = output
        }
        return layers
    }

    func buildReversible(_ params: inout YAMLMapping, input: TensorShape, path: String,
                         location: SourceLocation) throws -> (LayerKind, TensorShape) {
        let (c, h, w) = try requireSpatial(input, kind: "reversible", path: path, location: location)
        guard c % 2 == 0 else {
            throw fail("a reversible stage splits its \(c) input channels into two halves, so they must be even",
                       fix: "make the layer before it give an even number of channels", path: path, at: location)
        }
        let blocksNode = params.value("blocks")
        let blockCount = try params.int("blocks", default: 1, max: PlanningLimits.maxLayers)
        let builtBefore = budget.built
        let fNode = try params.require("f", example: "[neuron, {conv: {out: HALF, kernel: 3, padding: 1}}, batchnorm]")
        let gNode = params.value("g") ?? fNode
        try params.rejectUnknownKeys(allowed: ["blocks", "f", "g", "name"])
        let half = TensorShape([c / 2, h, w])
        var blocks: [ReversibleStage.Block] = []
        for index in 0..<blockCount {
            let blockPath = path + "/block\(index)"
            let (f, fOut) = try buildList(fNode, input: half, parentPath: blockPath + "/f", context: "reversible `f`")
            let (g, gOut) = try buildList(gNode, input: half, parentPath: blockPath + "/g", context: "reversible `g`")
            for (branch, output, node) in [("f", fOut, fNode), ("g", gOut, gNode)] where output != half {
                throw ProfileError(file: file, location: node.location, layerPath: blockPath + "/" + branch,
                                   problem: "reversible `\(branch)` must map a half \(half) to the same shape, but gives \(output)",
                                   fix: "keep \(c / 2) channels and the resolution inside `\(branch)` (stride 1, `out: \(c / 2)`)")
            }
            try refuseBranches(in: f + g, context: "reversible `f` or `g`")
            try refuseDropout(in: f + g, stage: path)
            blocks.append(ReversibleStage.Block(path: blockPath, f: f, g: g))
            if index == 0 {
                try budget.admitCopies(requested: blockCount, alreadyBuilt: 1, each: budget.built - builtBefore, key: "blocks", node: blocksNode ?? params.node,
                                       file: file, layerPath: path)
            }
        }
        return (.reversible(ReversibleStage(channels: c, blocks: blocks)), input)
    }

    func buildTRev(_ params: inout YAMLMapping, input: TensorShape, path: String,
                   location: SourceLocation) throws -> (LayerKind, TensorShape) {
        let (stemChannels, stemH, stemW) = try requireSpatial(input, kind: "trevsnn", path: path, location: location)
        let levelsNode = try params.require("levels", example: "[{channels: 32}, {channels: 64}]")
        let kernel = try params.int("kernel", default: 3)
        let expansionNode = params.value("expansion")
        let expansion = try params.int("expansion", default: 4)
        let alphaNode = params.value("alpha")
        let alpha = try params.double("alpha", default: 0.5)
        let layerScale = try params.double("layerScale", default: 1e-6)
        let classes = try params.int("classes", min: 2, example: "10")
        var neuron = NeuronSpec(type: .turnoff, threshold: defaultNeuron.threshold, surrogate: defaultNeuron.surrogate,
                                surrogateAlpha: defaultNeuron.surrogateAlpha)
        if let neuronNode = params.value("neuron") {
            neuron = try ProfileLoader.parseNeuron(neuronNode, base: neuron, file: file, layerPath: path)
            // Each column is one timestep with weights of its own: there is no next timestep in a
            // column for a membrane potential to carry into, so T-RevSNN's neurons are stateless.
            guard neuron.type == .turnoff else {
                throw params.error("a T-RevSNN network's neurons are stateless turn-off neurons; `type: \(neuron.type.rawValue)` would carry a membrane potential that no column uses",
                                   fix: "write `neuron: {type: turnoff, threshold: 1.0}` or leave `neuron:` out (threshold and surrogate come from the profile's neuron)",
                                   at: neuronNode)
            }
        }
        try params.rejectUnknownKeys(allowed: ["levels", "kernel", "expansion", "alpha", "layerScale", "classes", "neuron", "name"])
        guard abs(alpha) >= 1e-3 else {
            throw params.error("alpha = \(alpha) is too small: the inverse divides by it", fix: "use |alpha| >= 0.001 (0.5 is the paper's value)",
                               at: alphaNode)
        }
        guard kernel % 2 == 1 else {
            throw params.error("kernel \(kernel) must be odd so the depthwise conv keeps the resolution", fix: "use 3, 5 or 7")
        }
        guard let levelItems = levelsNode.sequence, !levelItems.isEmpty else {
            throw fail("trevsnn `levels` must be a non-empty list", fix: "write `levels: [{channels: 32}, {channels: 64}]`", path: path, at: levelsNode.location)
        }

        // First pass: channel counts and resolutions of every level.
        var specs: [(channels: Int, blocks: Int, stride: Int, shape: TensorShape, location: SourceLocation)] = []
        var below = (c: stemChannels, h: stemH, w: stemW)
        for (index, item) in levelItems.enumerated() {
            var level = try YAMLMapping(item, file: file, layerPath: path + "/level\(index)", context: "trevsnn level")
            try level.rejectUnknownKeys(allowed: ["channels", "blocks", "stride"])
            let channels = try level.int("channels", example: "64")
            let blocksNode = level.value("blocks")
            let blocks = try level.int("blocks", default: 1, min: 0, max: PlanningLimits.maxLayers)
            let stride = try level.int("stride", default: index == 0 ? 1 : 2)
            // Each ConvNeXt block is a residual of 6 layers; refuse a count past the budget before building any.
            try budget.admitCopies(requested: blocks, alreadyBuilt: 0, each: 7, key: "blocks", node: blocksNode ?? item, file: file, layerPath: path + "/level\(index)")
            guard stride <= 2 else {
                throw level.error("level stride \(stride) is not supported", fix: "use stride 1 (1x1 conv) or 2 (3x3 conv)")
            }
            let h = (below.h - 1) / stride + 1, w = (below.w - 1) / stride + 1
            // The blocks widen to channels x expansion: refuse it at `expansion`, not deep inside a block.
            if blocks > 0, (CheckedArithmetic.product([channels, expansion, h, w]) ?? Int.max) > PlanningLimits.maxSampleElements {
                throw params.error("expansion \(expansion) widens level \(index)'s \(channels)x\(h)x\(w) state past the \(PlanningLimits.formatted(PlanningLimits.maxSampleElements)) elements snnmem plans for one tensor",
                                   fix: "use a smaller expansion (4 is the paper's)", at: expansionNode)
            }
            specs.append((channels, blocks, stride, TensorShape([channels, h, w]), item.location))
            below = (channels, h, w)
        }

        var levels: [TRevNetwork.Level] = []
        for (index, spec) in specs.enumerated() {
            let levelPath = path + "/level\(index)"
            let belowShape = index == 0 ? input : specs[index - 1].shape
            let c = spec.channels
            let stride = spec.stride
            let downConv = ConvSpec(inChannels: belowShape.dims[0], outChannels: c, kernel: stride == 1 ? 1 : 3, stride: stride,
                                    padding: stride == 1 ? 0 : 1, groups: 1, bias: false)
            let down = try chain(path: levelPath + "/down", location: spec.location, input: belowShape, steps: [
                ("neuron0", .neuron(neuron), belowShape),
                ("conv1", .conv(downConv), spec.shape),
                ("batchnorm2", .batchNorm(channels: c), spec.shape),
            ])
            var up: [Layer] = []
            if index + 1 < specs.count {
                let above = specs[index + 1].shape
                guard spec.shape.dims[1] % above.dims[1] == 0, spec.shape.dims[2] % above.dims[2] == 0,
                      spec.shape.dims[1] / above.dims[1] == spec.shape.dims[2] / above.dims[2] else {
                    throw fail("level \(index + 1) (\(above)) cannot be upsampled by a whole factor to level \(index) (\(spec.shape))",
                               fix: "use input sizes divisible by 2 at every level", path: levelPath, at: spec.location)
                }
                let factor = spec.shape.dims[1] / above.dims[1]
                let upConv = ConvSpec(inChannels: above.dims[0], outChannels: c, kernel: 1, stride: 1, padding: 0, groups: 1, bias: false)
                let small = TensorShape([c, above.dims[1], above.dims[2]])
                up = try chain(path: levelPath + "/up", location: spec.location, input: above, steps: [
                    ("neuron0", .neuron(neuron), above),
                    ("conv1", .conv(upConv), small),
                    ("batchnorm2", .batchNorm(channels: c), small),
                    ("upsample3", .upsample(factor: factor), spec.shape),
                ])
            }
            var blocks: [Layer] = []
            for b in 0..<spec.blocks {
                let blockPath = levelPath + "/block\(b)"
                let wide = TensorShape([c * expansion, spec.shape.dims[1], spec.shape.dims[2]])
                let main = try chain(path: blockPath + "/main", location: spec.location, input: spec.shape, steps: [
                    ("neuron0", .neuron(neuron), spec.shape),
                    ("dwconv1", .conv(ConvSpec(inChannels: c, outChannels: c, kernel: kernel, stride: 1, padding: kernel / 2, groups: c, bias: false)), spec.shape),
                    ("pwconv2", .conv(ConvSpec(inChannels: c, outChannels: c * expansion, kernel: 1, stride: 1, padding: 0, groups: 1, bias: true)), wide),
                    ("neuron3", .neuron(neuron), wide),
                    ("pwconv4", .conv(ConvSpec(inChannels: c * expansion, outChannels: c, kernel: 1, stride: 1, padding: 0, groups: 1, bias: true)), spec.shape),
                    ("scale5", .scale(initial: layerScale), spec.shape),
                ])
                blocks.append(try admit(Layer(name: "block\(b)", path: blockPath, location: spec.location,
                                              kind: .residual(ResidualSpec(main: main, shortcut: [])), inputShape: spec.shape, outputShape: spec.shape)))
            }
            levels.append(TRevNetwork.Level(path: levelPath, channels: c, stateShape: spec.shape, down: down, up: up, blocks: blocks))
        }
        let top = specs[specs.count - 1].shape
        guard top.dims[1] == top.dims[2] else {
            throw fail("the top level is \(top.dims[1])x\(top.dims[2]); the heads' global pooling needs a square map",
                       fix: "use a square input", path: path, at: location)
        }
        let head = try chain(path: path + "/head", location: location, input: top, steps: [
            ("neuron0", .neuron(neuron), top),
            ("avgpool1", .avgPool(PoolSpec(kernel: top.dims[1], stride: top.dims[1], padding: 0)), TensorShape([top.dims[0], 1, 1])),
            ("flatten2", .flatten, TensorShape([top.dims[0]])),
            ("linear3", .linear(LinearSpec(inFeatures: top.dims[0], outFeatures: classes, bias: true)), TensorShape([classes])),
        ])
        let net = TRevNetwork(levels: levels, kernel: kernel, expansion: expansion, alphaInit: alpha, head: head, classes: classes)
        return (.trevsnn(net), TensorShape([classes]))
    }

    /// Builds a fixed chain of layers whose output shapes are already known.
    func chain(path: String, location: SourceLocation, input: TensorShape,
               steps: [(name: String, kind: LayerKind, output: TensorShape)]) throws -> [Layer] {
        var shape = input
        return try steps.map { step in
            defer { shape = step.output }
            return try admit(Layer(name: step.name, path: path + "/" + step.name, location: location, kind: step.kind,
                                   inputShape: shape, outputShape: step.output))
        }
    }

    /// Counts a built layer against the layer budget and checks its sizes against `PlanningLimits`.
    func admit(_ layer: Layer) throws -> Layer {
        budget.built += 1
        if budget.built > PlanningLimits.maxLayers {
            throw fail("the network expands to more than \(PlanningLimits.formatted(PlanningLimits.maxLayers)) layers (through `repeat`, `blocks` or YAML aliases), the most snnmem plans",
                       fix: "use fewer repeats or blocks", path: layer.path, at: layer.location)
        }
        let elements = layer.outputShape.checkedElementCount ?? Int.max
        if elements > PlanningLimits.maxSampleElements {
            throw fail("\(layer.kind.keyword) gives \(layer.outputShape) per sample, more than the \(PlanningLimits.formatted(PlanningLimits.maxSampleElements)) elements snnmem plans for one tensor",
                       fix: "use fewer channels, a smaller resolution or a smaller factor", path: layer.path, at: layer.location)
        }
        if (layer.parameterElementsBound ?? Int.max) > PlanningLimits.maxLayerParameters + 4 * PlanningLimits.maxDimension {
            throw fail("\(layer.kind.keyword) has more than the \(PlanningLimits.formatted(PlanningLimits.maxLayerParameters)) parameters one layer may have",
                       fix: "use fewer channels or a smaller kernel", path: layer.path, at: layer.location)
        }
        return layer
    }
}

extension YAMLMapping {
    /// The same mapping, re-labelled with the layer's final path once its name is known.
    init(rebinding other: YAMLMapping, layerPath: String) {
        self = other
        self.layerPath = layerPath
    }
}

/// The layers one profile has built so far. A class because the builder's nested calls (repeat,
/// residual branches, reversible blocks) must all count against one total.
final class LayerBudget {
    var built = 0

    /// Refuses a count (`times`, `blocks`) whose copies, `each` layers apiece, would pass
    /// `PlanningLimits.maxLayers`, before building them. `alreadyBuilt` copies are counted in `built`.
    func admitCopies(requested: Int, alreadyBuilt: Int, each: Int, key: String, node: Node, file: String,
                     layerPath: String) throws {
        let remaining = requested - alreadyBuilt
        guard remaining > 0, each > 0 else { return }
        let total = CheckedArithmetic.product(remaining, each).flatMap { CheckedArithmetic.sum($0, built) } ?? Int.max
        guard total > PlanningLimits.maxLayers else { return }
        let largest = alreadyBuilt + max(0, PlanningLimits.maxLayers - built) / each
        throw ProfileError(file: file, location: node.location, layerPath: layerPath,
                           problem: "'\(key)' is \(PlanningLimits.formatted(requested)): at \(each) layers each, the network would have more than \(PlanningLimits.formatted(PlanningLimits.maxLayers)) layers, the most snnmem plans",
                           fix: "set `\(key)` to at most \(largest)")
    }
}
