import Yams

extension ProfileLoader {
    /// Keys that shape a spike: a leaky integrator has none of them, so one written beside
    /// `type: li` would be ignored, and is refused instead.
    static let spikeSettingKeys = ["threshold", "vReset", "reset", "detachReset", "surrogate"]

    static func rejectSpikeSettingsOnLI(_ map: inout YAMLMapping, _ spec: NeuronSpec) throws {
        guard spec.type == .li else { return }
        if let key = spikeSettingKeys.first(where: { map.value($0) != nil }) {
            throw map.error("'\(key)' is a spiking setting, but an li neuron (a leaky integrator) never fires",
                            fix: "remove `\(key):`, or use `type: lif`", at: map.value(key))
        }
    }
}
