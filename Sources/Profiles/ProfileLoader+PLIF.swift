import Yams

extension ProfileLoader {
    /// `type: plif` and its `decayInput`: SpikingJelly's ParametricLIFNode starts from w = -ln(tau - 1),
    /// which needs tau > 1; `decayInput` is a PLIF setting (a profile's LIF always decays its input).
    static func parsePLIFSettings(_ map: inout YAMLMapping, _ spec: inout NeuronSpec, base: NeuronSpec) throws {
        let decayNode = map.value("decayInput")
        spec.decayInput = try map.bool("decayInput", default: spec.type == .plif ? base.decayInput : true)
        if spec.type == .plif && spec.tau <= 1 {
            throw map.error("a plif neuron's initial 'tau' is \(spec.tau), but its weight w = -ln(tau - 1) needs tau > 1",
                            fix: "set `tau:` above 1 (2.0 is SpikingJelly's default)", at: map.value("tau"))
        }
        if spec.type != .plif && !spec.decayInput {
            throw map.error("'decayInput: false' is a plif setting; a \(spec.type.rawValue) neuron always decays its input",
                            fix: "remove `decayInput:` or use `type: plif`", at: decayNode)
        }
    }
}
