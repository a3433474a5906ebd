import MemoryModel

/// One layer of a profile with its inferred shapes. Shapes are per sample and per timestep
/// ([channels, height, width] or [features]); batch and time are added by whoever allocates.
public struct Layer: Hashable, Sendable {
    public var name: String
    /// Slash-separated names from the network root, e.g. "stage2/block0/main/conv1".
    public var path: String
    public var location: SourceLocation
    public var kind: LayerKind
    public var inputShape: TensorShape
    public var outputShape: TensorShape

    public init(name: String, path: String, location: SourceLocation, kind: LayerKind,
                inputShape: TensorShape, outputShape: TensorShape) {
        self.name = name
        self.path = path
        self.location = location
        self.kind = kind
        self.inputShape = inputShape
        self.outputShape = outputShape
    }
}

public struct ConvSpec: Hashable, Codable, Sendable {
    public var inChannels: Int
    public var outChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    public var groups: Int
    public var bias: Bool

    public init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1, bias: Bool = false) {
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.groups = groups
        self.bias = bias
    }
}

public struct PoolSpec: Hashable, Codable, Sendable {
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    /// Written `globalavgpool`: PyTorch runs it as adaptive average pooling to 1x1, which keeps
    /// nothing for backward, where a plain average pool keeps its input.
    public var isGlobal: Bool

    public init(kernel: Int, stride: Int, padding: Int = 0, isGlobal: Bool = false) {
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.isGlobal = isGlobal
    }
}

public struct LinearSpec: Hashable, Codable, Sendable {
    public var inFeatures: Int
    public var outFeatures: Int
    public var bias: Bool

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.bias = bias
    }
}

/// A residual block: output = main(x) + shortcut(x); an empty shortcut is the identity.
public struct ResidualSpec: Hashable, Sendable {
    public var main: [Layer]
    public var shortcut: [Layer]
}

public indirect enum LayerKind: Hashable, Sendable {
    case conv(ConvSpec)
    /// A transposed convolution (upsampling): the adjoint of a conv from `outChannels` to
    /// `inChannels`; weight [in, out, k, k] as PyTorch's ConvTranspose2d (`ConvTranspose2D.swift`).
    case convTranspose(ConvSpec)
    case batchNorm(channels: Int)
    /// Layer normalisation over each sample's whole input (`LayerNormSpec`).
    case layerNorm(LayerNormSpec)
    case neuron(NeuronSpec)
    case avgPool(PoolSpec)
    case maxPool(PoolSpec)
    case flatten
    case linear(LinearSpec)
    /// Nearest-neighbour upsampling by an integer factor (T-RevSNN's up path).
    case upsample(factor: Int)
    /// A learnable scalar multiplying its input (ReZero / layer scale).
    case scale(initial: Double)
    /// SpikingJelly's `layer.Dropout`: one mask per sample (zeros and 1 / (1 - p)), drawn at the
    /// step's first timestep and shared by every timestep until the network is reset.
    case dropout(probability: Double)
    /// Adaptive average pooling to a given output size with PyTorch's windows (rows
    /// floor(i H / oh) ..< ceil((i + 1) H / oh)): overlapping, uneven or upsampling ratios included.
    case adaptiveAvgPool(outputHeight: Int, outputWidth: Int)
    /// SpikingJelly's `layer.VotingLayer`: the mean over each group of `size` neighbouring features.
    case voting(size: Int)
    case residual(ResidualSpec)
    /// Paths on the same input joined by add, concat, and or iand (`Branches.swift`).
    case branches(BranchesSpec)
    case reversible(ReversibleStage)
    case trevsnn(TRevNetwork)
    /// A kernel-1 convolution over [channels, tokens]: the per-token linear map of spiking transformers.
    case conv1d(ConvSpec)
    /// [C, H, W] -> [C, H*W] tokens, a view.
    case tokens
    /// [C, N] -> [C]: the mean over tokens before the classifier head.
    case tokenMean
    /// Spiking self-attention, a container of its sub-layers and the products between them.
    case attention(AttentionSpec)
    /// A recurrent spiking layer: a linear map of [x_t ; s_{t-1}] and a LIF/IF neuron (`RecurrentSpec`).
    case recurrent(RecurrentSpec)

    /// The name used in profiles and messages.
    public var keyword: String {
        switch self {
        case .conv: return "conv"
        case .convTranspose: return "convtranspose"
        case .batchNorm: return "batchnorm"
        case .layerNorm: return "layernorm"
        case .neuron: return "neuron"
        case .avgPool: return "avgpool"
        case .maxPool: return "maxpool"
        case .flatten: return "flatten"
        case .linear: return "linear"
        case .upsample: return "upsample"
        case .scale: return "scale"
        case .dropout: return "dropout"
        case .adaptiveAvgPool: return "adaptiveavgpool"
        case .voting: return "voting"
        case .residual: return "residual"
        case .branches: return "branches"
        case .reversible: return "reversible"
        case .trevsnn: return "trevsnn"
        case .conv1d: return "conv1d"
        case .tokens: return "tokens"
        case .tokenMean: return "tokenmean"
        case .attention: return "attention"
        case .recurrent: return "recurrent"
        }
    }
}
