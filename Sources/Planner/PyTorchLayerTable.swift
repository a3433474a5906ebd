import MemoryModel
import Profiles

/// One allocation event of a layer's forward or backward in PyTorch, in the order the aten ops
/// make them. A layer's script is run by `TraceBuilder.forwardPyTorch` / `backwardPyTorch`.
public indirect enum PyTorchStep: Hashable, Sendable {
    /// A named temporary, live until `.free(name)` (an op's intermediate result, a oneDNN reorder).
    case allocate(BufferDeclaration)
    case free(String)
    /// A new tensor autograd saves for backward. `heldByFinalState`: the op that saved it made
    /// the neuron's final v, which no loss reaches, so backward never frees it: the module's v
    /// keeps it (with its graph) until `reset_net`. Only the last timestep's copy is held.
    case save(BufferDeclaration, heldByFinalState: Bool)
    /// The layer's output.
    case output
    /// The state a module creates when it has none (v_init, full of v_reset), freed when the
    /// forward ends unless `saved`.
    case initialState(BufferDeclaration, saved: Bool)
    /// A new membrane potential; it replaces the previous one, which dies unless it is the
    /// initial state. The last one is the module's v until `reset_net`.
    case replaceState(BufferDeclaration)
    /// A new membrane potential from an op that also saved the previous one (CUDA's neuron op run
    /// one timestep per call saves its v_init): the previous state is kept for this layer's backward
    /// instead of dying. The first timestep's predecessor is `.initialState`'s to save.
    case replaceSavedState(BufferDeclaration)
    /// Autocast: `then` when the layer reads the network's float32 input sequence (the first layer;
    /// every other layer's input is a half output), `otherwise` when it reads a half tensor.
    case ifReadsInput([PyTorchStep], otherwise: [PyTorchStep])
    /// Steps taken only when a recurrent module starts from no fed-back output of its own (its zeros
    /// y_{-1}); a checkpoint segment after the first passes the previous segment's last output in
    /// instead (held under `PyTorchLayerTable.feedbackKey`).
    case ifNoFeedback([PyTorchStep])
    /// The steps once per timestep on [B, ...] tensors in a multi-step run (SpikingJelly's Python
    /// loop over x_seq), once in a single-step run.
    case eachTimestep([PyTorchStep])
    /// A tensor the module makes on its first call and holds until `reset_net` (dropout's mask),
    /// saved by every call that uses it; `making` and `made` run around its allocation on that first call.
    case heldOnce(BufferDeclaration, making: [PyTorchStep], made: [PyTorchStep])
    /// Backward: the gradient of the layer's input.
    case inputGradient
    /// Backward: each parameter's gradient, accumulated into `.grad`.
    case parameterGradients
    /// Backward: autograd frees the tensors the layer's nodes saved (after its nodes ran).
    case releaseSaved
    /// Backward: the gradient of the layer's output dies.
    case releaseOutputGradient
    /// Backward steps taken only when the input gradient is computed.
    case ifInputGradient([PyTorchStep])
    /// Backward steps taken only when the layer runs over two or more timesteps at once (bptt, checkpoint
    /// segments), not one timestep per call (SLTT) or T = 1: autograd sums a weight's per-timestep
    /// gradients before `.grad`.
    case ifMultiStep([PyTorchStep])
    /// Backward: `none` when the layer's weight has no gradient yet in this step, else `accumulating`.
    /// Autograd sums a weight's gradients in one buffer over the whole backward, every checkpoint
    /// segment's included; a later segment adds into what an earlier one's backward left, out of
    /// place (`afterView`) when that is a single timestep's gradient (a transposed view).
    case ifWeightGradient(none: [PyTorchStep], afterView: [PyTorchStep], accumulating: [PyTorchStep])
    /// Autocast: the half copy of the weight (`cached_cast`, once per autocast region), saved.
    case castWeight
    /// Autocast: a float32 input (the repeated images) is cast to half and the copy is saved
    /// in its place; a half input is kept as it is.
    case castInput
    /// Autocast backward: the half weight gradients go through ToCopyBackward into float32 `.grad`.
    case castGradients
    /// A named temporary holding oneDNN's scratchpad for a bfloat16 convolution's weight
    /// gradient, live until `.free(name)`. Its size depends on the samples the run convolves
    /// (T·B, k·B or B), which the walk knows.
    case allocateScratchpad(String, OneDNNWeightGradientScratchpad)
    /// A named temporary of one `shape` per PyTorch CPU thread ([threads, shape...], no batch or
    /// time dimension): the CPU layer norm's weight-gradient partials. The walk knows the threads.
    case allocatePerThread(BufferDeclaration)
    /// oneDNN's scratchpad for one pass of a float32 transposed convolution on the CPU, live around
    /// `around` (temporaries only). Its size depends on the threads and, for the weight gradient, on
    /// the samples of the call; a pass that books none allocates nothing.
    case deconvolutionScratchpad(OneDNNDeconvolution, OneDNNDeconvolution.Pass, around: [PyTorchStep])
}

/// What one layer allocates and keeps when PyTorch's eager autograd runs it as a SpikingJelly
/// multi-step module (`layer.Conv2d(step_mode='m')` and friends see [T*B, ...]). Shapes are per
/// sample and timestep; the walk adds batch and time as each `BufferDeclaration` says.
/// The project's Python package (python/) measures PyTorch; the fixtures under
/// Tests/PlannerTests/Fixtures/pytorch hold these scripts to it, byte for byte.
public struct PyTorchLayerLayout: Hashable, Sendable {
    /// An op of the layer saves its input for backward (a longer lifetime, no new bytes).
    public var keepsInput = false
    /// The output is a view of the input (flatten): nothing is allocated, forward or backward.
    public var outputIsView = false
    public var forward: [PyTorchStep] = [.output]
    public var backward: [PyTorchStep] = [.inputGradient, .parameterGradients, .releaseSaved, .releaseOutputGradient]
    /// Backward needs no input gradient when the input does not require one (the first conv on
    /// the repeated images): convolution and linear skip it, the others compute it anyway.
    public var canSkipInputGradient = false
    public var parameters: [ParameterDeclaration] = []
}

extension Layer {
    /// The weight autocast casts (conv and linear), if this layer has one.
    var pytorchWeight: ParameterDeclaration? {
        switch kind {
        case .conv, .linear, .conv1d, .recurrent: return LayerMemoryTable.declaration(for: self).parameters.first
        default: return nil
        }
    }
}

public enum PyTorchLayerTable {
    public enum Device: String, Sendable { case cpu, cuda }

    /// The first layer (depth first) that has no PyTorch + SpikingJelly layout, if any. The layers
    /// only T-RevSNN uses (turn-off neurons, scale) have layouts inside a `trevsnn:` network, which
    /// the Python package builds and measures; elsewhere it refuses them. A grouped or depthwise conv
    /// has the dense conv's layout everywhere; `Runtime.groupedConvNotModelledReason` refuses the
    /// dtypes and the CPU shapes outside what was measured. Nearest
    /// upsampling is SpikingJelly's multi-step `layer.Upsample` outside one (a U-Net's decoder).
    public static func firstUnsupported(_ layers: [Layer]) -> Layer? {
        for layer in ParameterLayout.flatten(layers) {
            switch layer.kind {
            case .conv:
                continue
            // A T-RevSNN network's own layers (turn-off neurons, scale, upsample) are modelled
            // inside it; the profile loader admits only turn-off neurons there.
            case .batchNorm, .layerNorm, .avgPool, .maxPool, .flatten, .linear, .residual, .branches, .reversible, .trevsnn, .upsample,
                 .convTranspose, .dropout, .adaptiveAvgPool, .voting, .conv1d, .tokens, .tokenMean, .attention:
                continue
            case .neuron(let spec):
                if spec.type == .turnoff { return layer }
            case .scale:
                return layer
            case .recurrent:
                continue
            }
        }
        return nil
    }

    /// `autocast`: the half dtype of `torch.autocast` (mixed precision), nil for float32.
    /// `transposed`: whether the layer's input or output gradient is a token layer norm's
    /// transposed view (`TransposedTokenNeighbours`).
    public static func layout(for layer: Layer, device: Device, autocast: DType? = nil,
                              transposed: PyTorchTransposedTokens = .init()) -> PyTorchLayerLayout {
        var d = PyTorchLayerLayout()
        // The same learnable tensors as the engine's: PyTorch's modules hold the same weights.
        d.parameters = LayerMemoryTable.declaration(for: layer).parameters
        let input = layer.inputShape
        let output = layer.outputShape
        func scratch(_ name: String, _ shape: TensorShape, dtype: DType? = nil) -> PyTorchStep {
            .allocate(BufferDeclaration(name: name, role: .workspace, shape: shape, dtype: dtype))
        }
        func weightScratch(_ name: String, _ shape: TensorShape) -> PyTorchStep {
            .allocate(BufferDeclaration(name: name, role: .workspace, shape: shape, perSample: false, dtype: autocast ?? .float32,
                                        perTimestep: false))
        }
        // Autocast: conv and linear compute in half on half copies of their weight and input.
        let casts: [PyTorchStep] = autocast == nil ? [] : [.castWeight, .castInput]
        let castsBack: [PyTorchStep] = autocast == nil ? [] : [.castGradients]
        switch layer.kind {
        case .conv(let conv), .conv1d(let conv):
            // Conv1d runs as a 2-d convolution of a [C, 1, N] view (`view1d_as_2d`): the same ops.
            d.keepsInput = true
            d.canSkipInputGradient = true
            let weight = d.parameters[0].shape
            if device == .cpu {
                // mkldnn_convolution: oneDNN reorders the weight (and a many-channel input) into
                // its blocked layout, computes into its own output and copies that out.
                let reordersInput = conv.inChannels % 8 == 0
                // A depthwise conv whose map is smaller than its kernel (T-RevSNN's top level, 2x2
                // under a 3x3 kernel) computes its weight gradient without reordering grad_output
                // or the input (measured; oneDNN's own scratchpad there, 111136 B at 384 channels on
                // this project's machine, depends on the ISA and is not declared). A conv2d's input
                // map decides: a stride-2 depthwise 3x3 from 4x4 to 2x2 reorders (measured).
                // (A conv1d's [C, N] maps: its last dimension is the only one its kernel spans.)
                let map = layer.kind == .conv(conv) ? input : output
                let plainWeightGradient = conv.groups > 1 && (map.rank == 3 && map.dims[1] < conv.kernel || map.dims.last! < conv.kernel)
                d.forward = casts + (reordersInput ? [scratch("input.reorder", input)] : []) + [
                    weightScratch("weight.reorder", weight), scratch("output.onednn", output), .free("weight.reorder"),
                ] + (reordersInput ? [.free("input.reorder")] : []) + [.output, .free("output.onednn")]
                // convolution_backward: the input gradient through reordered grad_output and
                // weight, then the weight gradient through grad_output (and input) reorders.
                // Under bfloat16 autocast the weight gradient's primitive books a scratchpad beside its
                // blocked result (`jit_bf16`, a dense conv with a kernel wider than 1). The 1x1 and
                // depthwise primitives book others, not declared (python/MIXED-PRECISION-NOTES.md §3).
                let bf16Scratchpad = OneDNNWeightGradientScratchpad(conv: conv, input: input, output: output)
                let scratchpad: [PyTorchStep] = autocast == .bfloat16 && bf16Scratchpad.isBooked
                    ? [.allocateScratchpad("scratchpad.onednn", bf16Scratchpad), .free("scratchpad.onednn")]
                    : []
                let weightGradient: [PyTorchStep] = plainWeightGradient
                    ? [weightScratch("grad_weight.onednn", weight), .parameterGradients, .free("grad_weight.onednn")]
                    : [scratch("grad_output.reorder", output)] + (reordersInput ? [scratch("input.reorder", input)] : [])
                        + [weightScratch("grad_weight.onednn", weight)] + scratchpad + (reordersInput ? [.free("input.reorder")] : [])
                        + [.free("grad_output.reorder"), .parameterGradients, .free("grad_weight.onednn")]
                d.backward = [
                    .ifInputGradient([scratch("grad_output.reorder", output), weightScratch("weight.reorder", weight),
                                      scratch("grad_input.onednn", input), .free("weight.reorder"), .free("grad_output.reorder"),
                                      .inputGradient, .free("grad_input.onednn")]),
                ] + weightGradient + [.releaseOutputGradient, .releaseSaved] + castsBack
            } else {
                d.forward = casts + [.output]
                d.backward = [.inputGradient, .parameterGradients, .releaseSaved, .releaseOutputGradient] + castsBack
            }
            transposedConvolutionCopies(&d, transposed, input: input, output: output)
        case .convTranspose(let conv):
            // cuDNN's transposed convolution keeps its input and weight, as a convolution does (fake-CUDA
            // traces, python/tests/test_convtranspose.py); so does oneDNN's on the CPU, around which
            // PyTorch reorders and allocates as `OneDNNDeconvolution` describes (`Runtime` refuses autocast
            // and the CPU shapes it does not cover).
            precondition(autocast == nil, "\(layer.path): transposed conv is modelled in float32 only")
            d.keepsInput = true
            d.canSkipInputGradient = true
            guard device == .cpu else {
                d.forward = [.output]
                d.backward = [.inputGradient, .parameterGradients, .releaseSaved, .releaseOutputGradient]
                break
            }
            let deconv = OneDNNDeconvolution(conv: conv, input: input, output: output)
            let weight = d.parameters[0].shape
            // mkldnn_convolution_transpose: the input reordered to channels-last, the weight to 16-output-
            // channel blocks, the output computed channels-last into oneDNN's own tensor; then two output-
            // sized `empty`s, the second the result, and the first and oneDNN's freed.
            d.forward = [
                .deconvolutionScratchpad(deconv, .forward, around: [
                    scratch("input.reorder", input), weightScratch("weight.reorder", weight), scratch("output.onednn", output),
                    .free("weight.reorder"), .free("input.reorder"),
                ]),
                scratch("output.empty", output), .output, .free("output.empty"), .free("output.onednn"),
            ]
            // Backward: the input gradient through grad_output and the weight in 16-channel blocks; the
            // weight gradient through grad_output and the input in 16-channel blocks, into a blocked
            // weight (and bias) gradient beside its scratchpad, then copied out to PyTorch's.
            let biasGradient = BufferDeclaration(name: "grad_bias.onednn", role: .workspace, shape: TensorShape([conv.outChannels]),
                                                 perSample: false, dtype: .float32, perTimestep: false)
            d.backward = [
                .ifInputGradient([scratch("grad_output.reorder", output), weightScratch("weight.reorder", weight),
                                  scratch("grad_input.onednn", input), .free("weight.reorder"), .free("grad_output.reorder"),
                                  .inputGradient, .free("grad_input.onednn")]),
                scratch("grad_output.reorder", output), scratch("input.reorder", input), weightScratch("grad_weight.onednn", weight),
                .deconvolutionScratchpad(deconv, .weightGradient, around: conv.bias ? [.allocate(biasGradient)] : []),
                .free("input.reorder"), .free("grad_output.reorder"), .parameterGradients, .free("grad_weight.onednn"),
            ] + (conv.bias ? [.free(biasGradient.name)] : []) + [.releaseOutputGradient, .releaseSaved]
        case .linear:
            d.keepsInput = true
            d.canSkipInputGradient = true
            d.forward = casts + [.output]
            d.backward = [.inputGradient, .parameterGradients, .releaseOutputGradient, .releaseSaved] + castsBack
        case .batchNorm(let channels):
            // native_batch_norm over [T*B, C, H, W]: the input, and save_mean / save_invstd once
            // for all timesteps (the statistics are over T*B samples, not per timestep).
            d.keepsInput = true
            let statistic = { (name: String) in
                BufferDeclaration(name: name, role: .activation, shape: TensorShape([channels]), perSample: false, dtype: .float32,
                                  perTimestep: false)
            }
            d.forward = [.output, .save(statistic("save_mean"), heldByFinalState: false),
                         .save(statistic("save_invstd"), heldByFinalState: false)]
            if device == .cpu {
                // native_batch_norm_backward on the CPU works through one input-sized buffer.
                d.backward = [.inputGradient, .parameterGradients, scratch("grad_input.work", input), .free("grad_input.work"),
                              .releaseOutputGradient, .releaseSaved]
            }
            if transposed.any { transposedBatchNorm(&d, transposed, channels: channels, input: input, device: device) }
        case .layerNorm(let spec):
            layerNormLayout(&d, spec, inputShape: input, device: device)
        case .neuron(let spec) where spec.type == .turnoff:
            turnOffLayout(&d, spec, output)
        case .neuron(let spec) where spec.type == .alif:
            alifLayout(&d, spec, output)
        case .neuron(let spec) where spec.type == .li:
            leakyIntegratorLayout(&d, output, stateDType: autocast ?? .float32)
        case .neuron(let spec):
            // A half input leaves the fused CUDA op (it needs a float32 v) for the step loop, on
            // CUDA as on the CPU.
            neuronLayout(&d, spec, output, device: autocast == nil ? device : .cpu, stateDType: autocast ?? .float32)
        case .avgPool(let pool):
            // adaptive_avg_pool2d to 1x1 is a mean over H and W and keeps only sizes.
            d.keepsInput = !pool.isGlobal
        case .maxPool:
            d.keepsInput = true
            d.forward = [.output, .save(BufferDeclaration(name: "indices", role: .activation, shape: output, dtype: .int64),
                                        heldByFinalState: false)]
        case .flatten, .tokens:
            d.outputIsView = true
        case .tokenMean:
            break  // MeanBackward keeps only sizes; backward expands the gradient into an input-sized one
        case .scale:
            // `x * scale` (a one-element parameter): MulBackward0 keeps x. Backward computes
            // dY * x for the scale's gradient (summed to its one element, which becomes .grad) and
            // dY * scale for the input's; the product dies with the sum.
            d.keepsInput = true
            d.backward = [scratch("grad*input", output), .inputGradient, .parameterGradients, .free("grad*input"),
                          .releaseSaved, .releaseOutputGradient]
        case .upsample:
            // F.interpolate(mode='nearest') keeps only sizes. On the CPU upsample_nearest2d also
            // copies its input and makes an output-sized buffer it frees before returning.
            d.forward = device == .cpu
                ? [.output, scratch("input.copy", input), scratch("output.work", output), .free("output.work"), .free("input.copy")]
                : [.output]
            d.backward = [.inputGradient, .releaseOutputGradient, .releaseSaved]
        case .dropout, .adaptiveAvgPool, .voting:
            dvsLayout(&d, layer, device: device)
        case .residual, .branches:
            break  // the joins are the walk's (`BranchesWalk.swift`)
        case .reversible, .trevsnn, .attention:
            preconditionFailure("\(layer.path): a container, run by the walk or its schedule")
        case .recurrent(let spec):
            recurrentLayout(&d, spec, layer, device: device, autocast: autocast)
        }
        if autocast != nil, case .layerNorm(let spec) = layer.kind {
            precondition(device == .cpu, "\(layer.path): layer norm under autocast is modelled on the CPU only")
            layerNormAutocast(&d, spec)
        }
        return d
    }

    /// T-RevSNN's stateless neuron as the Python package runs it: SpikingJelly's surrogate spike
    /// function on x - threshold. The subtraction's result is saved (the surrogate's backward
    /// needs it); Heaviside goes through a bool mask. Backward: the surrogate's derivative holds
    /// at most four input-sized tensors at once for atan (x², 1 + x², its reciprocal, products)
    /// and three for sigmoid (sigmoid(x), 1 - sigmoid(x), their product), ending in the input
    /// gradient; then the output gradient and the saved difference die. The same ops on CUDA and
    /// the CPU.
    static func turnOffLayout(_ d: inout PyTorchLayerLayout, _ spec: NeuronSpec, _ output: TensorShape) {
        let step = { (name: String, role: TensorRole) in BufferDeclaration(name: name, role: role, shape: output) }
        d.forward = [.save(step("x-threshold", .activation), heldByFinalState: false),
                     .allocate(BufferDeclaration(name: "x>=threshold", role: .workspace, shape: output, dtype: .bool)),
                     .output, .free("x>=threshold")]
        let held = spec.surrogate == .atan ? 4 : 3
        let work = (0..<held).map { step("surrogate.work\($0)", .workspace) }
        d.backward = work.map { .allocate($0) } + work.map { .free($0.name) } + [.inputGradient, .releaseOutputGradient, .releaseSaved]
    }

    /// SpikingJelly's LIF/IF (`torch.ops.sj_lif` / `sj_if`). On CUDA one registered op runs
    /// all timesteps: `save_for_backward(h_seq, x_seq, v_init)`. On the CPU its autograd is the
    /// reference step loop, so autograd saves per timestep what the loop's ops need: the
    /// surrogate h - threshold, a hard reset's v = s * v_reset + (1 - s) * h both 1 - s and h
    /// (only 1 - s with detach_reset), a soft reset's v = h - s * threshold nothing.
    /// `stateDType`: v's dtype. A float32 v on the CPU runs the registered op's autograd loop,
    /// which also stacks the charged h; another dtype runs SpikingJelly's plain reference loop.
    static func neuronLayout(_ d: inout PyTorchLayerLayout, _ spec: NeuronSpec, _ output: TensorShape, device: Device,
                             stateDType: DType) {
        let stacksCharge = stateDType == .float32
        let oneStep = { (name: String, role: TensorRole) in
            BufferDeclaration(name: name, role: role, shape: output, dtype: stateDType, perTimestep: false)
        }
        let vInit = oneStep("v_init", .neuronState)
        defer { if spec.type == .plif { plifWeight(&d, device: device, perTimestepDecay: device == .cpu && !stacksCharge) } }
        switch device {
        case .cuda:
            d.keepsInput = true
            d.forward = [.initialState(vInit, saved: true),
                         .save(BufferDeclaration(name: "h_seq", role: .neuronState, shape: output, dtype: .float32), heldByFinalState: false),
                         .output, .replaceState(oneStep("v", .neuronState))]
            // Backward materialises the unused final-v gradient as zeros and returns a v_init
            // gradient nobody reads (v_init does not require grad).
            d.backward = [.allocate(oneStep("grad_v_final", .workspace)), .inputGradient,
                          .allocate(oneStep("grad_v_init", .workspace)), .free("grad_v_init"), .free("grad_v_final"),
                          .releaseSaved, .releaseOutputGradient]
        case .cpu:
            let step = { (name: String, role: TensorRole) in BufferDeclaration(name: name, role: role, shape: output) }
            // charge: h = v + (x - (v - v_reset)) / tau for LIF, h = v + x for IF
            var charge: [PyTorchStep] = []
            if spec.type == .lif {
                charge = [.allocate(step("v-reset", .workspace)), .allocate(step("x-(v-reset)", .workspace)), .free("v-reset"),
                          .allocate(step("/tau", .workspace)), .free("x-(v-reset)")]
            }
            let plif = spec.type == .plif ? plifCharge(spec, output, perTimestepDecay: !stacksCharge) : nil
            charge += plif?.before ?? []
            let hSaved = spec.reset == .hard && !spec.detachReset
            charge.append(hSaved ? .save(step("h", .neuronState), heldByFinalState: true) : .allocate(step("h", .neuronState)))
            if spec.type == .lif { charge.append(.free("/tau")) }
            charge += plif?.after ?? []
            // fire: the surrogate saves h - threshold; Heaviside through a bool mask
            let fire: [PyTorchStep] = [.save(step("h-threshold", .neuronState), heldByFinalState: false),
                                       .allocate(BufferDeclaration(name: "h>=threshold", role: .workspace, shape: output, dtype: .bool)),
                                       .allocate(step("spike", .activation)), .free("h>=threshold")]
            var reset: [PyTorchStep]
            switch spec.reset {
            case .hard:
                reset = [.allocate(step("s*v_reset", .workspace)), .save(step("1-s", .activation), heldByFinalState: true),
                         .allocate(step("(1-s)*h", .workspace)), .replaceState(step("v", .neuronState)),
                         .free("s*v_reset"), .free("(1-s)*h")]
            case .soft:
                reset = [.allocate(step("s*threshold", .workspace)), .replaceState(step("v", .neuronState)), .free("s*threshold")]
            }
            if stacksCharge {
                d.forward = [.initialState(vInit, saved: false), .eachTimestep(charge + fire + reset),
                             // torch.stack of the spikes is the output; the stack of the charged h is
                             // returned too and dropped at once
                             .output, .allocate(BufferDeclaration(name: "h_seq", role: .workspace, shape: output)),
                             .eachTimestep([.free("spike")] + (hSaved ? [] : [.free("h")])), .free("h_seq")]
            } else {
                // The plain reference loop (a half v under autocast): no stack of h, which dies
                // with its timestep unless saved.
                d.forward = [.initialState(vInit, saved: false), .eachTimestep(charge + fire + reset + (hSaved ? [] : [.free("h")])),
                             .output, .eachTimestep([.free("spike")])]
            }
            // Backward runs one node per op and timestep; the surrogate's (atan or sigmoid)
            // gradient works through four [B, ...] temporaries at once, the most the loop holds
            // beside the per-timestep input gradients, which UnbindBackward concatenates.
            let work = (0..<4).map { BufferDeclaration(name: "surrogate.work\($0)", role: .workspace, shape: output, perTimestep: false) }
            d.backward = work.map { .allocate($0) } + work.map { .free($0.name) } + [
                .releaseSaved, .eachTimestep([.allocate(step("grad_x_t", .workspace))]), .releaseOutputGradient,
                .inputGradient, .eachTimestep([.free("grad_x_t")]),
            ]
        }
    }
}

/// The machine a pytorch-cpu plan is made for, as far as oneDNN's scratchpads depend on it.
public struct OneDNNMachine: Hashable, Sendable {
    /// oneDNN's threads (`torch.get_num_threads()`). They split a weight gradient's work, and
    /// each thread given a share of the samples accumulates a float32 weight gradient of its own.
    public var threads: Int
    /// AVX512-BF16 (Cooper Lake, Zen 4 and later). Without it (AVX-512 alone) the same primitive
    /// emulates bf16 and never takes its whole-map loop, which changes how it splits the work.
    public var nativeBF16: Bool
    /// L2 per core: a first conv at least 124 wide transposes in blocks, one buffer per thread,
    /// when its output gradient outgrows a quarter of it.
    public var l2BytesPerCore: Int

    public init(threads: Int, nativeBF16: Bool, l2BytesPerCore: Int) {
        self.threads = threads
        self.nativeBF16 = nativeBF16
        self.l2BytesPerCore = l2BytesPerCore
    }

    /// The fixtures' machines: an Intel Xeon and an AMD EPYC, 2 threads each, AVX512-BF16 and
    /// no AMX; 1 MiB L2 per core on the EPYC (no fixture conv depends on it).
    public static let fixtures = OneDNNMachine(threads: 2, nativeBF16: true, l2BytesPerCore: 1 << 20)
}

/// The scratchpad of oneDNN's bfloat16 weight-gradient convolution, as PyTorch runs it under CPU
/// autocast: `jit_bf16:avx512_core_bf16` (`jit_avx512_core_bf16_convolution_bwd_weights_t`,
/// oneDNN 3.13 in PyTorch 2.15) on a dense 2-D convolution with a kernel wider than 1, blocked
/// layout, bfloat16 weight gradient. PyTorch allocates `pd.scratchpad_desc()` through its own
/// allocator around the call. The primitive's `init_conf`, `balance` and `init_scratchpad` book:
/// - the input transposed (`tr_src`): one image per sample thread and 16-channel block, its rows
///   padded, bf16. A first conv (under 16 input channels) is not transposed: the guard elements only.
/// - the output gradient transposed (`tr_diff_dst`): one image per sample thread and output block.
/// - a float32 weight (and bias) gradient per sample thread (`wei_bia_reduction`): each thread
///   accumulates its own, and a bfloat16 result needs one even with a single thread.
/// - a page-sized barrier for each transpose split over channel threads, one for the reduction.
/// Each booking is padded by its alignment (128 B; 4 KiB for the page-aligned barriers).
/// `balance` splits the threads over samples and channel blocks to minimise an estimate of each
/// thread's memory traffic, so the size steps with the samples and the threads. Measured to the
/// byte: every scratch event of the bf16 fixtures (Xeon and EPYC), and single convs at 1-8
/// threads, 1-16 samples, strides 1-2, kernels 3-7, with AVX-512 alone (`ONEDNN_MAX_CPU_ISA`).
public struct OneDNNWeightGradientScratchpad: Hashable, Sendable {
    public var conv: ConvSpec
    /// One sample's [C, H, W].
    public var input: TensorShape
    public var output: TensorShape

    public init(conv: ConvSpec, input: TensorShape, output: TensorShape) {
        self.conv = conv
        self.input = input
        self.output = output
    }

    static let block = 16  // float32 lanes of a zmm register: the channel block

    /// Whether this primitive takes the conv. The 1x1 and depthwise primitives come first and
    /// book other scratchpads; a first conv (under 16 input channels) needs whole output blocks.
    public var isBooked: Bool {
        let firstConv = conv.inChannels < Self.block
        return conv.kernel > 1 && conv.groups == 1 && conv.kernel <= (firstConv ? 24 : 14)
            && (!firstConv || conv.outChannels % Self.block == 0)
    }

    /// Bytes for a run over `samples` images.
    public func bytes(samples mb: Int, on machine: OneDNNMachine) -> Int {
        precondition(isBooked, "\(conv): not a jit_bf16 weight-gradient convolution")
        func ceilDiv(_ a: Int, _ b: Int) -> Int { (a + b - 1) / b }
        func roundUp(_ a: Int, _ b: Int) -> Int { ceilDiv(a, b) * b }
        let block = Self.block
        let k = conv.kernel, stride = conv.stride, pad = conv.padding
        let (ih, iw, oh, ow) = (input.dims[1], input.dims[2], output.dims[1], output.dims[2])
        let firstConv = conv.inChannels < block
        // Channels padded to whole blocks; a first conv's input is one block of its own width.
        let ic = firstConv ? conv.inChannels : roundUp(conv.inChannels, block)
        let oc = roundUp(conv.outChannels, block)
        let icBlock = firstConv ? ic : block
        let (nbIC, nbOC) = (ic / icBlock, oc / block)
        let rightPad = max(0, (ow - 1) * stride + k - (iw + pad))
        let bottomPad = max(0, (oh - 1) * stride + k - (ih + pad))
        let trPad = roundUp(max(pad, rightPad + 1), 2)
        let trIW = firstConv ? iw : roundUp(ceilDiv(iw, stride) + trPad, 2) * stride
        let trOW = roundUp(ow, 2)
        // A unit-stride "same" conv of 128 channels or more loops over whole maps per sample;
        // the others split the samples' rows among the threads too.
        let rowBytes = (icBlock * trIW + block * trOW) * 2 * max(1, bottomPad, pad)
        let wholeMaps = machine.nativeBF16 && ih == oh && iw == ow && stride == 1 && pad == k / 2 && !firstConv
            && rowBytes <= 48 * 1024 && ic >= 128
        let sampleWork = wholeMaps ? mb : mb * oh
        let globalTranspose = !(firstConv && ow >= 124 && oh > 1 && oc * oh * ow >= machine.l2BytesPerCore / 4)

        // balance: the split with the least estimated traffic per thread (float, as oneDNN computes it).
        let weightScale = Float(0.5) * Float(mb * oc * oh * trOW * 2 + mb * ic * ih * trIW * 2) / Float(oc * ic * k * k * 4)
        let ratio = Float(nbOC) / Float(nbIC)
        let srcCoef = max(1 / ratio, 1) * (weightScale < 1 ? 4 : 1)
        let (dstCoef, weiCoef) = (max(ratio, 1), max(weightScale, 1))
        func traffic(_ m: Int, _ o: Int, _ i: Int) -> Float {
            let src = srcCoef * Float(ceilDiv(sampleWork, m) * ceilDiv(nbIC, i) * mb * icBlock * ih * trIW) / Float(sampleWork * stride * stride)
            let dst = dstCoef * Float(ceilDiv(sampleWork, m) * ceilDiv(nbOC, o) * mb * block * oh * trOW) / Float(sampleWork)
            let wei = weiCoef * Float(ceilDiv(nbOC, o) * ceilDiv(nbIC, i) * k * k * icBlock * block)
            return src + dst + wei
        }
        let threads = machine.threads
        var split = (mb: 1, oc: 1, ic: 1)
        var least = traffic(1, 1, 1)
        for m in 1...max(1, min(threads, sampleWork)) {
            let share = threads / m
            for o in 1...max(1, min(share, nbOC)) {
                let i = min(share / o, nbIC)
                let t = traffic(m, o, i)
                if t <= least { (least, split) = (t, (m, o, i)) }
            }
        }
        if split.mb > threads / 2 && split.mb < threads { split.mb = min(sampleWork, threads) }
        let used = split.mb * split.oc * split.ic

        var total = 0
        func book(_ bytes: Int, alignment: Int = 128) { if bytes > 0 { total += bytes + alignment } }
        let barrier = 4096  // simple_barrier::ctx_t, page-aligned
        let inputImages = firstConv ? 0 : (globalTranspose ? split.mb * nbIC : used)
        book((inputImages * trIW * icBlock * ih + trPad) * 2)
        if globalTranspose && split.oc > 1 { book(used / split.oc * barrier, alignment: barrier) }
        book((globalTranspose ? split.mb * nbOC : used) * trOW * block * oh * 2)
        if globalTranspose && split.ic > 1 { book(used / split.ic * barrier, alignment: barrier) }
        book((oc * ic * k * k + (conv.bias ? oc : 0)) * split.mb * 4)
        if globalTranspose { book(barrier, alignment: barrier) }
        return total
    }
}
