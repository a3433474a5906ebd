/// Spiking neuron models (SpikingJelly's charge, fire, reset).
public enum NeuronType: String, Codable, CaseIterable, Sendable {
    /// Leaky integrate-and-fire: v += (x - (v - vReset)) / tau.
    case lif
    /// Integrate-and-fire: v += x.
    case `if`
    /// Stateless "turn-off" neuron of T-RevSNN: fires on its input alone, no membrane across timesteps.
    case turnoff
    /// SpikingJelly's ParametricLIFNode: a LIF whose decay q = sigmoid(w) is learned (one w per
    /// layer, initialised so that 1 / q = tau): h = v + (x - (v - vReset)) q, or h = v - (v - vReset) q + x
    /// without `decayInput`.
    case plif
    /// Leaky integrator (a readout): v += (x - v) / tau, the output is v itself; no threshold, no
    /// spike, no reset. Linear in x and v, so backward needs nothing saved from forward.
    case li
    /// Adaptive LIF (Bellec et al. 2018, "Long short-term memory and learning-to-learn in networks
    /// of spiking neurons", the LSNN's adaptive threshold): a LIF charge, and a second state b with
    /// b_t = rho b_{t-1} + (1 - rho) s_{t-1}; the neuron fires when h_t >= threshold + beta b_t.
    case alif
}

public enum ResetMode: String, Codable, CaseIterable, Sendable {
    /// v = vReset after a spike.
    case hard
    /// v -= threshold after a spike.
    case soft
}

public enum SurrogateKind: String, Codable, CaseIterable, Sendable {
    case atan
    case sigmoid
}

public struct NeuronSpec: Hashable, Codable, Sendable {
    public var type: NeuronType
    public var tau: Double
    public var threshold: Double
    public var vReset: Double
    public var reset: ResetMode
    /// Detach the reset path from the graph (SpikingJelly's `detach_reset`).
    public var detachReset: Bool
    public var surrogate: SurrogateKind
    public var surrogateAlpha: Double
    /// PLIF: the input is decayed with the potential (SpikingJelly's `decay_input`, true by default).
    public var decayInput: Bool = true
    /// ALIF: the adaptation's decay per timestep (Bellec et al.'s rho = exp(-dt / tau_a)), in [0, 1).
    public var rho: Double = 0.9
    /// ALIF: how far one unit of adaptation raises the threshold (Bellec et al.'s beta, 1.8 there).
    public var beta: Double = 1.8

    public init(type: NeuronType = .lif, tau: Double = 2.0, threshold: Double = 1.0, vReset: Double = 0.0,
                reset: ResetMode = .hard, detachReset: Bool = false, surrogate: SurrogateKind = .atan,
                surrogateAlpha: Double = 2.0) {
        self.type = type
        self.tau = tau
        self.threshold = threshold
        self.vReset = vReset
        self.reset = reset
        self.detachReset = detachReset
        self.surrogate = surrogate
        self.surrogateAlpha = surrogateAlpha
    }

    /// Whether a membrane potential is carried from one timestep to the next.
    public var carriesState: Bool { type != .turnoff }

    /// Whether the output is a spike train (false for the leaky integrator, which outputs v).
    public var spikes: Bool { type != .li }
}
