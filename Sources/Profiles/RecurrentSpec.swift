import MemoryModel

/// A recurrent spiking layer: one linear map of the layer's input and of its own spikes of the
/// previous timestep, then a spiking neuron:
///   I_t = W [x_t ; s_{t-1}] + b,   s_t = neuron(I_t),   s_{-1} = 0.
/// W is one [out, in + out] matrix, the input columns first, as SpikingJelly's
/// `layer.LinearRecurrentContainer` holds it (`rc = nn.Linear(in + out, ...)` on `cat(x, y)`):
/// with in == out the two are the same function and the same weights. BPTT must keep s_{t-1}
/// of every timestep for W's recurrent columns.
public struct RecurrentSpec: Hashable, Sendable {
    public var inFeatures: Int
    public var outFeatures: Int
    public var bias: Bool
    public var neuron: NeuronSpec

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, neuron: NeuronSpec) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.bias = bias
        self.neuron = neuron
    }

    /// Columns of the weight: the input's features, then the fed-back spikes.
    public var weightColumns: Int { inFeatures + outFeatures }
}
