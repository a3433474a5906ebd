import Foundation
import MemoryModel
import Yams

/// Reads a profile file: YAML with source positions, then layer by layer shape inference.
public enum ProfileLoader {
    static let topLevelKeys = ["name", "description", "input", "timesteps", "batch", "dtype", "neuron", "optimizer",
                               "classes", "layers"]

    /// Loads and checks a profile file; every failure is a `ProfileError`.
    public static func load(path: String) throws -> Profile {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ProfileError(file: path, location: nil, problem: "no such profile file",
                               fix: "check the path; the bundled profiles are in profiles/ (e.g. profiles/cifarnet.yaml)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ProfileError(file: path, location: nil, problem: "the file cannot be read",
                               fix: "check that it is a readable file, not a folder")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ProfileError(file: path, location: nil, problem: "the file is not UTF-8 text",
                               fix: "save the profile as UTF-8 YAML")
        }
        var profile = try parse(yaml: text, file: path)
        // The file's bytes, not the decoded text: the digest must equal `sha256sum FILE`.
        profile.sourceSHA256 = SHA256.hex(data)
        return profile
    }

    /// Parses profile text; `file` names it in messages.
    public static func parse(yaml: String, file: String) throws -> Profile {
        let root: Node
        do {
            // Every value is read as its text (`YAMLMapping`), never by its resolved tag: the basic
            // resolver skips the regular expressions that would guess each scalar's type.
            guard let node = try Yams.compose(yaml: yaml, .basic) else {
                throw ProfileError(file: file, location: SourceLocation(line: 1, column: 1), problem: "the profile is empty",
                                   fix: "start from a bundled profile such as profiles/cifarnet.yaml")
            }
            root = node
        } catch let error as ProfileError {
            throw error
        } catch let error as YamlError {
            throw yamlSyntaxError(error, file: file, yaml: yaml)
        } catch {
            throw ProfileError(file: file, location: nil, problem: "the YAML cannot be read (\(error))",
                               fix: "check the file's YAML syntax")
        }
        var profile = try parse(root: root, file: file)
        profile.sourceSHA256 = SHA256.hex(Array(yaml.utf8))
        return profile
    }

    static func yamlSyntaxError(_ error: YamlError, file: String, yaml: String) -> ProfileError {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let detail = context.map { "\($0.text) (started at line \($0.mark.line), column \($0.mark.column)): " } ?? ""
            return ProfileError(file: file, location: SourceLocation(line: mark.line, column: mark.column),
                                problem: "invalid YAML: \(detail)\(problem)",
                                fix: "check indentation, colons and brackets at this position")
        case .duplicatedKeysInMapping(let duplicates, let context):
            // Yams marks the key's first occurrence; the error belongs at the repeat.
            let key = duplicates.first ?? ""
            let first = SourceLocation(line: context.mark.line, column: context.mark.column)
            let location = DuplicateKeyLocator(yaml: yaml).repeatOf(key, after: first) ?? first
            return ProfileError(file: file, location: location,
                                problem: "the key '\(duplicates.joined(separator: "', '"))' appears twice in one mapping (first at line \(first.line))",
                                fix: "keep one of each key")
        case .reader(let problem, let offset, let value, _):
            // libyaml gives a byte offset; editors count lines and columns.
            let location = offset.map { byteOffset -> SourceLocation in
                let prefix = String(decoding: yaml.utf8.prefix(byteOffset), as: UTF8.self)
                let lines = prefix.split(separator: "\n", omittingEmptySubsequences: false)
                return SourceLocation(line: lines.count, column: (lines.last?.unicodeScalars.count ?? 0) + 1)
            }
            let character = value >= 0 ? String(format: " (U+%04X)", Int(value)) : ""
            return ProfileError(file: file, location: location, problem: "invalid YAML: \(problem)\(character)",
                                fix: "remove the character; a profile is plain text")
        default:
            return ProfileError(file: file, location: nil, problem: "invalid YAML: \(error)", fix: "check the file's YAML syntax")
        }
    }

    static func parse(root: Node, file: String) throws -> Profile {
        var top = try YAMLMapping(root, file: file, layerPath: nil, context: "the profile")
        // Unknown keys first: a misspelled `bacth:` is the error, not the `batch` it leaves missing.
        try top.rejectUnknownKeys(allowed: topLevelKeys)
        let fallbackName = URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let name = try top.string("name", default: fallbackName) ?? fallbackName
        let description = try top.string("description", default: "") ?? ""

        var input = try YAMLMapping(try top.require("input", example: "{channels: 3, height: 32, width: 32}"),
                                    file: file, layerPath: nil, context: "input")
        try input.rejectUnknownKeys(allowed: ["channels", "height", "width", "features", "perTimestep"])
        let perTimestepNode = input.value("perTimestep")
        let inputPerTimestep = try input.bool("perTimestep", default: false)
        let inputShape = try parseInputShape(&input)
        if (inputShape.checkedElementCount ?? Int.max) > PlanningLimits.maxSampleElements {
            throw input.error("the input \(inputShape) has more than the \(PlanningLimits.formatted(PlanningLimits.maxSampleElements)) elements per sample snnmem plans",
                              fix: "use a smaller input (channels x height x width, or features)")
        }

        let timesteps = try top.int("timesteps", max: PlanningLimits.maxTimesteps, example: "4")
        let batch = try top.int("batch", max: PlanningLimits.maxBatch, example: "16")
        let dtypeNode = top.value("dtype")
        let dtype = try top.choice("dtype", default: DType.float32)
        if !dtype.holdsActivations {
            throw top.error("dtype \(dtype.rawValue) cannot hold activations", fix: "use float32, float16 or bfloat16", at: dtypeNode)
        }
        let neuron = try top.value("neuron").map { try parseNeuron($0, base: NeuronSpec(), file: file, layerPath: nil) } ?? NeuronSpec()
        let optimizer = try top.value("optimizer").map { try parseOptimizer($0, file: file) } ?? OptimizerSpec()
        let classesNode = top.value("classes")
        let layersNode = try top.require("layers", example: "[...]  (a list of layers)")

        let builder = LayerBuilder(file: file, defaultNeuron: neuron)
        let (layers, output) = try builder.buildList(layersNode, input: inputShape, parentPath: "", context: "layers")
        guard let last = layers.last else {
            throw ProfileError(file: file, location: layersNode.location, problem: "the network has no layers",
                               fix: "list at least one layer under `layers:`")
        }
        guard output.rank == 1 else {
            throw ProfileError(file: file, location: last.location, layerPath: last.path,
                               problem: "the network ends with shape \(output), but training needs class scores (one number per class)",
                               fix: "end the network with `- flatten` and `- linear: {out: NUMBER_OF_CLASSES}`")
        }
        if let classesNode {
            let classes = try YAMLMapping.integer(classesNode, key: "classes", min: 2, file: file, layerPath: nil, context: "the profile")
            guard classes == output.dims[0] else {
                throw ProfileError(file: file, location: classesNode.location, layerPath: last.path,
                                   problem: "the profile says \(classes) classes but the last layer gives \(output.dims[0]) outputs",
                                   fix: "set the last linear layer's `out` to \(classes), or `classes` to \(output.dims[0])")
            }
        }
        guard output.dims[0] >= 2 else {
            throw ProfileError(file: file, location: last.location, layerPath: last.path,
                               problem: "the network gives \(output.dims[0]) output, but classification needs at least 2 classes",
                               fix: "set the last linear layer's `out` to the number of classes")
        }
        var profile = Profile(name: name, sourcePath: file, description: description, inputShape: inputShape, timesteps: timesteps,
                              batch: batch, dtype: dtype, neuron: neuron, optimizer: optimizer, layers: layers, classes: output.dims[0])
        profile.inputPerTimestep = inputPerTimestep
        if inputPerTimestep, profile.trevsnnNetwork != nil {
            // T-RevSNN's stem encodes one image for all columns; frames per timestep have no place in it.
            throw input.error("a trevsnn network's stem encodes the input once, so its input cannot change every timestep",
                              fix: "remove `perTimestep: true`, or use a network without `trevsnn:`", at: perTimestepNode)
        }
        // The profile's own batch and T must be plannable together with its shapes.
        if let problem = profile.sizeProblem(batch: batch, timesteps: timesteps) {
            let key = problem.quantity == .batch ? "batch" : "timesteps"
            throw top.error(problem.description, fix: "set `\(key)` to at most \(problem.largest)", at: top.value(key))
        }
        return profile
    }

    static func parseNeuron(_ node: Node, base: NeuronSpec, file: String, layerPath: String?) throws -> NeuronSpec {
        if case .scalar(let scalar) = node, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" { return base }
        var map = try YAMLMapping(node, file: file, layerPath: layerPath, context: "neuron")
        var spec = base
        spec.type = try map.choice("type", default: base.type)
        spec.tau = try map.double("tau", default: base.tau)
        if spec.tau < 1 {
            throw map.error("neuron 'tau' is \(spec.tau), but a LIF time constant must be at least 1 (decay 1/tau <= 1)",
                            fix: "set `tau:` to 1 or more (2.0 is common)")
        }
        try parsePLIFSettings(&map, &spec, base: base)
        try parseALIFSettings(&map, &spec, base: base)
        spec.threshold = try map.double("threshold", default: base.threshold, positive: true)
        spec.vReset = try map.double("vReset", default: base.vReset)
        spec.reset = try map.choice("reset", default: base.reset)
        spec.detachReset = try map.bool("detachReset", default: base.detachReset)
        if let surrogateNode = map.value("surrogate") {
            if let text = surrogateNode.scalar?.string {
                guard let kind = SurrogateKind(rawValue: text.lowercased()) else {
                    throw map.error("surrogate '\(text)' is not one of: atan, sigmoid", fix: "write `surrogate: atan` or `surrogate: sigmoid`", at: surrogateNode)
                }
                spec.surrogate = kind
            } else {
                var surrogate = try YAMLMapping(surrogateNode, file: file, layerPath: layerPath, context: "surrogate")
                spec.surrogate = try surrogate.choice("type", default: base.surrogate)
                spec.surrogateAlpha = try surrogate.double("alpha", default: base.surrogateAlpha, positive: true)
                try surrogate.rejectUnknownKeys(allowed: ["type", "alpha"])
            }
        }
        try rejectSpikeSettingsOnLI(&map, spec)
        try map.rejectUnknownKeys(allowed: ["type", "tau", "threshold", "vReset", "reset", "detachReset", "surrogate", "decayInput", "rho", "beta", "name"])
        return spec
    }

    static func parseOptimizer(_ node: Node, file: String) throws -> OptimizerSpec {
        var map = try YAMLMapping(node, file: file, layerPath: nil, context: "optimizer")
        var spec = OptimizerSpec()
        spec.type = try map.choice("type", default: spec.type)
        spec.learningRate = try map.double("learningRate", default: spec.type == .adam ? 1e-3 : 0.1, positive: true)
        spec.momentum = try map.double("momentum", default: spec.type == .sgd ? 0.9 : 0, range: 0...0.999999)
        spec.weightDecay = try map.double("weightDecay", default: 0, range: 0...1)
        spec.beta1 = try map.double("beta1", default: 0.9, range: 0...0.999999)
        spec.beta2 = try map.double("beta2", default: 0.999, range: 0...0.999999)
        spec.epsilon = try map.double("epsilon", default: 1e-8, positive: true)
        if spec.type == .adam && map.used.contains("momentum") {
            throw map.error("'momentum' is an SGD setting; Adam uses beta1 and beta2", fix: "remove `momentum:` or use `type: sgd`")
        }
        try map.rejectUnknownKeys(allowed: ["type", "learningRate", "momentum", "weightDecay", "beta1", "beta2", "epsilon"])
        return spec
    }
}
