import Yams

extension ProfileLoader {
    /// `type: alif` and its adaptation (Bellec et al. 2018): `rho` in [0, 1) is the adaptation's decay
    /// per timestep (rho = 1 would never forget a spike, and b would grow without bound), `beta` >= 0
    /// the threshold's rise per unit of adaptation (0 is a plain LIF). Both are ALIF settings only.
    static func parseALIFSettings(_ map: inout YAMLMapping, _ spec: inout NeuronSpec, base: NeuronSpec) throws {
        guard spec.type == .alif else {
            if let key = ["rho", "beta"].first(where: { map.value($0) != nil }) {
                throw map.error("'\(key)' is an adaptive-threshold setting, but a \(spec.type.rawValue) neuron has no adaptation",
                                fix: "remove `\(key):`, or use `type: alif`", at: map.value(key))
            }
            return
        }
        let rhoNode = map.value("rho")
        spec.rho = try map.double("rho", default: base.type == .alif ? base.rho : NeuronSpec().rho)
        guard spec.rho >= 0 && spec.rho < 1 else {
            throw map.error("an alif neuron's 'rho' is \(spec.rho), but the adaptation's decay per timestep must be in [0, 1)",
                            fix: "set `rho:` to at least 0 and below 1 (0.9 is the default; exp(-1/tau_a) for a time constant tau_a)",
                            at: rhoNode)
        }
        let betaNode = map.value("beta")
        spec.beta = try map.double("beta", default: base.type == .alif ? base.beta : NeuronSpec().beta)
        guard spec.beta >= 0 && spec.beta.isFinite else {
            throw map.error("an alif neuron's 'beta' is \(spec.beta), but the threshold's rise per unit of adaptation must be 0 or more",
                            fix: "set `beta:` to 0 or more (1.8 is the default, as Bellec et al. 2018)", at: betaNode)
        }
    }
}
