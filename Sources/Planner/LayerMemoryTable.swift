import MemoryModel
import Profiles

/// A buffer a layer allocates, declared by name, role and per-sample shape.
public struct BufferDeclaration: Hashable, Sendable {
    public var name: String
    public var role: TensorRole
    /// Shape per sample and timestep, or per timestep only when `perSample` is false.
    public var shape: TensorShape
    /// Whether the buffer has a batch dimension (activations do; batch-norm statistics do not).
    public var perSample: Bool
    /// Element type; nil means the profile's dtype.
    public var dtype: DType?
    /// Whether a run over all timesteps at once allocates it with a time dimension ([T, ...]);
    /// false for what exists once per run (a multi-step neuron's v, PyTorch's batch statistics).
    public var perTimestep: Bool
    /// Scratch sized for at most this many samples of the batch: allocated as [min(batch, n), shape...]
    /// (a conv that gathers several samples' columns into one GEMM). nil: `shape` as it is.
    public var batchLimit: Int?

    public init(name: String, role: TensorRole, shape: TensorShape, perSample: Bool = true, dtype: DType? = nil,
                perTimestep: Bool = true, batchLimit: Int? = nil) {
        precondition(batchLimit == nil || (!perSample && batchLimit! > 0), "a batch limit sizes scratch that is not per sample")
        self.name = name
        self.role = role
        self.shape = shape
        self.perSample = perSample
        self.dtype = dtype
        self.perTimestep = perTimestep
        self.batchLimit = batchLimit
    }

    /// The shape of one operation's scratch at this batch: `shape`, led by min(batch, batchLimit) when limited.
    public func scratchShape(batch: Int) -> TensorShape {
        batchLimit.map { shape.prepending(min(batch, $0)) } ?? shape
    }
}

/// A learnable (or running-statistics) tensor of a layer.
public struct ParameterDeclaration: Hashable, Sendable {
    public var name: String
    public var shape: TensorShape
    /// Running statistics are parameters without gradient or optimizer state.
    public var trainable: Bool
}

/// What one layer allocates in a training step. This table is the single source of truth: the
/// planner sums it, and the engine allocates exactly these buffers, so that predicted and
/// measured peaks can be compared tensor by tensor.
public struct LayerMemoryDeclaration: Hashable, Sendable {
    /// Forward keeps a reference to its input for backward (no new bytes, a longer lifetime).
    public var keepsInput: Bool
    /// Buffers the forward allocates and backward needs (freed at once when nothing is kept).
    public var saved: [BufferDeclaration]
    /// Scratch allocated and freed inside forward, after the output and the saved buffers.
    public var forwardWorkspace: [BufferDeclaration]
    /// Scratch allocated and freed inside backward, after the input gradient.
    public var backwardWorkspace: [BufferDeclaration]
    /// The output shares the input's storage (flatten); no output and no input gradient is allocated.
    public var outputIsView: Bool
    /// Carried from one timestep to the next in forward (the membrane potential v).
    public var forwardState: [BufferDeclaration]
    /// Carried from one timestep to the previous one in backward (dL/dv).
    public var backwardState: [BufferDeclaration]
    public var parameters: [ParameterDeclaration]
    /// Backward can skip the input gradient when nothing needs it (the first layer): conv, linear
    /// and scale compute their weight gradients without it; other kernels write it regardless.
    public var canSkipInputGradient: Bool
    /// Scratch kept for the whole run: allocated at set-up after every parameter (layer by layer, in
    /// `ParameterLayout` order), never freed. A conv's spike-products weight panel (`SpikePanel`).
    public var keptScratch: [BufferDeclaration]

    static let none = LayerMemoryDeclaration(keepsInput: false, saved: [], forwardWorkspace: [], backwardWorkspace: [],
                                             outputIsView: false, forwardState: [], backwardState: [], parameters: [],
                                             canSkipInputGradient: false, keptScratch: [])
}

/// The table itself: one switch over layer kinds (llm.c's `fill_in_activation_sizes` is the model).
public enum LayerMemoryTable {
    public static func declaration(for layer: Layer) -> LayerMemoryDeclaration {
        var d = LayerMemoryDeclaration.none
        switch layer.kind {
        case .conv(let conv):
            d.keepsInput = true
            d.canSkipInputGradient = true
            d.parameters = [ParameterDeclaration(name: "weight", shape: TensorShape([conv.outChannels, conv.inChannels / conv.groups, conv.kernel, conv.kernel]), trainable: true)]
            if conv.bias { d.parameters.append(ParameterDeclaration(name: "bias", shape: TensorShape([conv.outChannels]), trainable: true)) }
            // im2col of one sample per kernel lane: kernelLanes x (Cin * k * k) x (Hout * Wout). The engine runs
            // `kernelLanes` samples at once, each lane with a single-threaded GEMM on its own slot (about twice
            // the speed of one multi-threaded GEMM per sample on 2 cores). The price is one more sample's
            // columns (conv2 of CIFARNet: 2.25 MiB more), small beside a batch's activations.
            // A small output plane (Hout * Wout below `groupedColumns / kernelLanes`) makes one sample's GEMMs
            // too narrow for the register tiles (vgg11's 2x2 maps: N = 4): the engine then gathers up to
            // `convSampleGroup` samples' columns side by side into one GEMM of N >= `groupedColumns`, with
            // their outputs (or output gradients) staged beside: [min(B, group), Cin * k * k + Cout, Hout * Wout].
            // A 1x1, stride 1, unpadded conv is a plain GEMM and needs none.
            if !isPointwise(conv) {
                let plane = layer.outputShape.dims[1] * layer.outputShape.dims[2]
                let rows = conv.inChannels * conv.kernel * conv.kernel
                let group = convSampleGroup(outputPlane: plane)
                let im2col = group > 1
                    ? BufferDeclaration(name: "im2col", role: .workspace, shape: TensorShape([rows + conv.outChannels, plane]),
                                        perSample: false, batchLimit: group)
                    : BufferDeclaration(name: "im2col", role: .workspace, shape: TensorShape([kernelLanes, rows, plane]), perSample: false)
                d.forwardWorkspace = [im2col]
                d.backwardWorkspace = [im2col]
            }
            if let panel = SpikePanel.declaration(conv, layer: layer) { d.keptScratch = [panel] }
        case .convTranspose(let conv):
            d.keepsInput = true
            d.canSkipInputGradient = true
            d.parameters = [ParameterDeclaration(name: "weight", shape: TensorShape([conv.inChannels, conv.outChannels, conv.kernel, conv.kernel]), trainable: true)]
            if conv.bias { d.parameters.append(ParameterDeclaration(name: "bias", shape: TensorShape([conv.outChannels]), trainable: true)) }
            // The columns of one sample at a time (the kernel is sequential over samples):
            // (Cout * k * k) x (H * W), forward (W^T x before col2im) and backward (im2col of dY).
            if !isPointwise(conv) {
                let columns = TensorShape([1, conv.outChannels * conv.kernel * conv.kernel, layer.inputShape.dims[1] * layer.inputShape.dims[2]])
                let buffer = BufferDeclaration(name: "columns", role: .workspace, shape: columns, perSample: false)
                d.forwardWorkspace = [buffer]
                d.backwardWorkspace = [buffer]
            }
        case .batchNorm(let channels):
            d.keepsInput = true
            // Batch statistics of this timestep, kept in float32 whatever the activation dtype.
            d.saved = [BufferDeclaration(name: "mean", role: .activation, shape: TensorShape([channels]), perSample: false, dtype: .float32),
                       BufferDeclaration(name: "invstd", role: .activation, shape: TensorShape([channels]), perSample: false, dtype: .float32)]
            d.parameters = [ParameterDeclaration(name: "weight", shape: TensorShape([channels]), trainable: true),
                            ParameterDeclaration(name: "bias", shape: TensorShape([channels]), trainable: true),
                            ParameterDeclaration(name: "runningMean", shape: TensorShape([channels]), trainable: false),
                            ParameterDeclaration(name: "runningVar", shape: TensorShape([channels]), trainable: false)]
        case .layerNorm(let spec):
            layerNormDeclaration(&d, spec)
        case .neuron(let neuron):
            if neuron.type == .plif {
                plifDeclaration(&d, layer)
            } else if neuron.type == .alif {
                alifDeclaration(&d, layer)
            } else if neuron.type == .li {
                // Linear in x and v: nothing saved; v carried forward, dL/dv carried back.
                d.forwardState = [BufferDeclaration(name: "v", role: .neuronState, shape: layer.outputShape)]
                d.backwardState = [BufferDeclaration(name: "dv", role: .workspace, shape: layer.outputShape)]
            } else if neuron.carriesState {
                // SpikingJelly keeps h (the potential before firing) and recomputes the spike from it.
                d.saved = [BufferDeclaration(name: "h", role: .neuronState, shape: layer.outputShape)]
                d.forwardState = [BufferDeclaration(name: "v", role: .neuronState, shape: layer.outputShape)]
                d.backwardState = [BufferDeclaration(name: "dv", role: .workspace, shape: layer.outputShape)]
            } else {
                // A stateless neuron fires on its input alone: the input is all backward needs.
                d.keepsInput = true
            }
        case .avgPool, .upsample:
            break
        case .maxPool:
            d.saved = [BufferDeclaration(name: "argmax", role: .activation, shape: layer.outputShape, dtype: .int32)]
        case .flatten:
            d.outputIsView = true
        case .linear(let linear):
            d.keepsInput = true
            d.canSkipInputGradient = true
            d.parameters = [ParameterDeclaration(name: "weight", shape: TensorShape([linear.outFeatures, linear.inFeatures]), trainable: true)]
            if linear.bias { d.parameters.append(ParameterDeclaration(name: "bias", shape: TensorShape([linear.outFeatures]), trainable: true)) }
        case .scale:
            d.keepsInput = true
            d.canSkipInputGradient = true
            d.parameters = [ParameterDeclaration(name: "scale", shape: TensorShape([1]), trainable: true)]
        case .dropout, .adaptiveAvgPool, .voting:
            dvsDeclaration(&d, layer)
        case .residual, .branches, .reversible, .trevsnn, .attention:
            // Containers: their sub-layers declare their own buffers; the schedules handle the adds.
            break
        case .conv1d(let conv):
            // A GEMM per sample on [C, N] (kernel 1), or direct loops over the window (Conv1DWindow.swift):
            // no im2col either way, the input kept for the weight gradient.
            d.keepsInput = true
            d.canSkipInputGradient = true
            d.parameters = [ParameterDeclaration(name: "weight", shape: TensorShape([conv.outChannels, conv.inChannels / conv.groups, conv.kernel]),
                                                 trainable: true)]
            if conv.bias { d.parameters.append(ParameterDeclaration(name: "bias", shape: TensorShape([conv.outChannels]), trainable: true)) }
        case .tokens:
            d.outputIsView = true
        case .tokenMean:
            break
        case .recurrent(let spec):
            recurrentDeclaration(&d, layer, spec)
        }
        return d
    }

    /// Samples a conv computes at once, one per CPU thread of the engine, each with its own im2col slot.
    /// Fixed (not the machine's core count) so that a plan does not depend on where it is made.
    public static let kernelLanes = 2

    /// The engine's attention backward: one head's map gradient, reused head after head ([N, N], no batch).
    public static func attentionMapWorkspace(_ spec: AttentionSpec) -> BufferDeclaration {
        BufferDeclaration(name: "dAttn", role: .workspace, shape: TensorShape([spec.tokens, spec.tokens]), perSample: false)
    }

    /// GEMM columns (N) a conv with a small output plane gathers from several samples: 256, eight of the
    /// AVX-512 GEMM's 32-wide tiles and one of its K blocks (the weight gradient's K is the same N).
    public static let groupedColumns = 256

    /// Samples one GEMM of a (non-pointwise) conv takes at most: 1 when a sample's plane is wide enough
    /// for per-sample GEMMs on the kernel lanes, else enough samples for `groupedColumns` columns.
    public static func convSampleGroup(outputPlane: Int) -> Int {
        outputPlane * kernelLanes >= groupedColumns ? 1 : (groupedColumns + outputPlane - 1) / outputPlane
    }

    public static func isPointwise(_ conv: ConvSpec) -> Bool {
        conv.kernel == 1 && conv.stride == 1 && conv.padding == 0
    }

    /// Forward FLOPs of one layer for one sample and one timestep (a multiply-add counts 2).
    public static func forwardFlops(for layer: Layer) -> Double {
        let outElements = Double(layer.outputShape.elementCount)
        let inElements = Double(layer.inputShape.elementCount)
        switch layer.kind {
        case .conv(let conv):
            let macs = outElements * Double(conv.inChannels / conv.groups * conv.kernel * conv.kernel)
            return 2 * macs + (conv.bias ? outElements : 0)
        case .convTranspose(let conv):
            return 2 * inElements * Double(conv.outChannels * conv.kernel * conv.kernel) + (conv.bias ? outElements : 0)
        case .linear(let linear):
            return 2 * Double(linear.inFeatures * linear.outFeatures) + (linear.bias ? Double(linear.outFeatures) : 0)
        case .batchNorm, .layerNorm:
            return 7 * inElements  // mean, variance, normalize, affine
        case .neuron(let neuron):
            return neuron.carriesState ? 5 * outElements : outElements  // charge, fire, reset
        case .avgPool(let pool), .maxPool(let pool):
            return outElements * Double(pool.kernel * pool.kernel)
        case .upsample, .scale, .dropout:
            return outElements
        case .adaptiveAvgPool, .voting:
            return inElements  // every input element is added to a window (adaptive windows may overlap a little)
        case .flatten, .residual, .branches, .reversible, .trevsnn, .tokens:
            return 0
        case .conv1d(let conv):
            return 2 * outElements * Double(conv.inChannels / conv.groups * conv.kernel) + (conv.bias ? outElements : 0)
        case .tokenMean:
            return inElements
        case .recurrent(let spec):
            return recurrentForwardFlops(spec)
        case .attention(let spec):
            // SSA: q kᵀ and attn v (2 N² C each) and the scaling; SDSA: k ⊙ v, its column sums and
            // q ⊙ the spikes (N C each). The sub-layers count their own.
            let tokens = Double(spec.tokens)
            switch spec.kind {
            case .ssa: return 4 * tokens * tokens * Double(spec.channels) + Double(spec.mapShape.elementCount)
            case .sdsa: return 3 * tokens * Double(spec.channels)
            }
        }
    }
}
