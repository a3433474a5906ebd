import MemoryModel
import Profiles

extension PyTorchLayerTable {
    /// Where the walk holds a recurrent module's fed-back output y (its second carried state; the
    /// neuron's v is held under the layer's path) when a checkpoint segment passes it on.
    static func feedbackKey(_ path: String) -> String { path + "#y" }

    /// The recurrent layer as the Python package runs it (python/snnmem_torch/recurrent.py): per timestep
    /// `y = neuron(rc(cat(x_t, y)))`, SpikingJelly's single-step LIF/IF (its registered op run on one
    /// timestep, the CPU's reference step loop), the steps' spikes stacked. Autograd keeps per timestep
    /// the concatenation [x_t ; y_{t-1}] (addmm's input; the weight is a parameter) and what one step of
    /// the neuron keeps (`neuronLayout`'s step: h - threshold, and 1 - s and h for a hard reset).
    /// Forward also makes y_{-1} (zeros), the linear's output I_t, the op's one-step stacks of its
    /// spike and of h, and the neuron's v_init on the first step.
    /// Backward is modelled coarser than the measured stream (saved bytes are exact): the neuron's
    /// surrogate temporaries as a `neuron` layer's, then per timestep the concatenation's gradient
    /// [B, in + out], alive only while that timestep's gradients are split.
    static func recurrentLayout(_ d: inout PyTorchLayerLayout, _ spec: RecurrentSpec, _ layer: Layer, device: Device, autocast: DType?) {
        if let half = autocast { return recurrentAutocastLayout(&d, spec, layer, half: half) }
        if device == .cuda { return recurrentCUDALayout(&d, spec, layer) }
        let output = layer.outputShape
        let (vInit, step) = neuronStepScript(spec, layer, stateDType: .float32)
        let hSaved = spec.neuron.reset == .hard && !spec.neuron.detachReset
        let one = { (name: String, role: TensorRole) in BufferDeclaration(name: name, role: role, shape: output) }
        let concatenation = BufferDeclaration(name: "cat(x,y)", role: .activation, shape: TensorShape([spec.weightColumns]))
        let yInit = BufferDeclaration(name: "y_init", role: .neuronState, shape: output, perTimestep: false)
        d.keepsInput = false  // the concatenation is a new tensor; x_t itself is not kept
        d.canSkipInputGradient = true
        d.forward = [.ifNoFeedback([.allocate(yInit)]), .eachTimestep([
            .save(concatenation, heldByFinalState: false), .allocate(one("current", .workspace)), .initialState(vInit, saved: false),
        ] + step + [
            .allocate(one("y", .activation)), .allocate(one("h_seq", .workspace)), .free("h_seq"), .free("spike"),
        ] + (hSaved ? [] : [.free("h")]) + [.free("current")]), .ifNoFeedback([.free("y_init")]), .output, .eachTimestep([.free("y")])]
        d.backward = cpuBackward(spec, output, castGradients: false)
    }

    /// The module under float16/bfloat16 autocast, the same on the CPU and on CUDA (measured on the CPU,
    /// python/LAYOUT-NOTES.md §14; the saved tensors checked on fake CUDA tensors): the half input of the
    /// single-step neuron leaves SpikingJelly's registered op for its plain step (on CUDA too), in half.
    /// On the network's float32 input the concatenation [x_t ; y_{t-1}] is float32 (y_{-1} is zeros of
    /// x's dtype, later y's are promoted): addmm saves its half copy and the float32 one dies; on a half
    /// input the concatenation is half and saved as it is. The weight's half copy is cast once per
    /// autocast region and saved (`castWeight`) unless no concatenation needs a gradient (the walk
    /// decides). Per timestep the step keeps h - threshold, and 1 - s and h for a hard reset, in half.
    /// Backward as in float32, in half, then the half weight and bias gradients go to float32 `.grad`.
    /// Not declared: the float32 copy of y_{t-1} that `cat` makes beside a float32 x_t, and the float32
    /// gradient copy ToCopyBackward makes of the concatenation's (both [B, out] or [B, in + out], transient).
    static func recurrentAutocastLayout(_ d: inout PyTorchLayerLayout, _ spec: RecurrentSpec, _ layer: Layer, half: DType) {
        let output = layer.outputShape
        let (vInit, step) = neuronStepScript(spec, layer, stateDType: half)
        let one = { (name: String, role: TensorRole) in BufferDeclaration(name: name, role: role, shape: output) }
        let columns = TensorShape([spec.weightColumns])
        let yInit = { (dtype: DType) in
            BufferDeclaration(name: "y_init", role: .neuronState, shape: output, dtype: dtype, perTimestep: false)
        }
        d.keepsInput = false  // the concatenation is a new tensor; x_t itself is not kept
        d.canSkipInputGradient = true
        let concatenate: PyTorchStep = .ifReadsInput(
            [.allocate(BufferDeclaration(name: "cat(x,y)", role: .activation, shape: columns, dtype: .float32)),
             .save(BufferDeclaration(name: "cat(x,y).\(half.rawValue)", role: .activation, shape: columns, dtype: half), heldByFinalState: false),
             .free("cat(x,y)")],
            otherwise: [.save(BufferDeclaration(name: "cat(x,y)", role: .activation, shape: columns), heldByFinalState: false)])
        d.forward = [.ifReadsInput([.ifNoFeedback([.allocate(yInit(.float32))])], otherwise: [.ifNoFeedback([.allocate(yInit(half))])]),
                     .castWeight, .eachTimestep([
            concatenate, .allocate(one("current", .workspace)), .initialState(vInit, saved: false),
        ] + step + [
            // the single-step module returns its spike stacked as a one-timestep sequence
            .allocate(one("y", .activation)), .free("spike"), .free("current"),
        ]), .ifNoFeedback([.free("y_init")]), .output, .eachTimestep([.free("y")])]
        // As in float32, in half; then the half weight and bias gradients go to float32 `.grad`.
        d.backward = cpuBackward(spec, output, castGradients: true)
    }

    /// The same module on CUDA (python/CUDA-LAYOUT-NOTES.md, checked on fake CUDA tensors by
    /// tests/test_cuda_layout.py): the float32 single-step neuron is SpikingJelly's fused op on one
    /// timestep, which saves h, its input x and its v_init (`save_for_backward(h, x, v)`). Per timestep
    /// autograd so keeps the concatenation [x_t ; y_{t-1}], the linear's output I_t (the op's x), the
    /// charge h ([1, B, out], float32) and the previous v: the zeros v_init on the first timestep, the
    /// previous timestep's v_final after it. No surrogate temporaries: the kernels use registers.
    /// Backward per timestep: the spike's gradient, the op's input and v_init gradients, the
    /// concatenation's gradient; the unused last v_final's gradient is one zeros tensor.
    static func recurrentCUDALayout(_ d: inout PyTorchLayerLayout, _ spec: RecurrentSpec, _ layer: Layer) {
        let output = layer.outputShape
        let one = { (name: String, role: TensorRole) in BufferDeclaration(name: name, role: role, shape: output) }
        let oneStep = { (name: String, role: TensorRole) in BufferDeclaration(name: name, role: role, shape: output, perTimestep: false) }
        let concatenation = BufferDeclaration(name: "cat(x,y)", role: .activation, shape: TensorShape([spec.weightColumns]))
        d.keepsInput = false  // the concatenation is a new tensor; x_t itself is not kept
        d.canSkipInputGradient = true
        d.forward = [.ifNoFeedback([.allocate(oneStep("y_init", .neuronState))]), .eachTimestep([
            .save(concatenation, heldByFinalState: false), .save(one("current", .activation), heldByFinalState: false),
            .initialState(oneStep("v_init", .neuronState), saved: true), .allocate(one("y", .activation)),
            .replaceSavedState(one("v", .neuronState)), .save(BufferDeclaration(name: "h", role: .neuronState, shape: output, dtype: .float32),
                                                              heldByFinalState: false),
        ]), .ifNoFeedback([.free("y_init")]), .output, .eachTimestep([.free("y")])]
        let gradient = BufferDeclaration(name: "grad_cat", role: .workspace, shape: TensorShape([spec.weightColumns]))
        d.backward = [.allocate(oneStep("grad_v_final", .workspace)), .eachTimestep([
            .allocate(one("grad_spike", .workspace)), .allocate(one("grad_current", .workspace)), .allocate(one("grad_v_init", .workspace)),
            .free("grad_spike"), .allocate(gradient), .free("grad_current"), .free("grad_cat"), .free("grad_v_init"),
        ]), .free("grad_v_final"), weightGradientSum(spec), .releaseSaved, .releaseOutputGradient, .inputGradient]
    }

    /// The neuron's CPU script for one timestep in `stateDType`: its initial state and the step's body.
    private static func neuronStepScript(_ spec: RecurrentSpec, _ layer: Layer, stateDType: DType) -> (BufferDeclaration, [PyTorchStep]) {
        var neuron = PyTorchLayerLayout()
        neuronLayout(&neuron, spec.neuron, layer.outputShape, device: .cpu, stateDType: stateDType)
        guard case .initialState(let vInit, _) = neuron.forward.first,
              let step = neuron.forward.lazy.compactMap({ step -> [PyTorchStep]? in
                  if case .eachTimestep(let body) = step { return body }
                  return nil
              }).first else {
            preconditionFailure("\(layer.path): the neuron's \(stateDType.rawValue) CPU script has no initial state and step loop")
        }
        return (vInit, step)
    }

    /// Backward of the CPU's step loop (float32 or autocast's half): the neuron's surrogate
    /// temporaries, per timestep the concatenation's gradient, the weight gradients' sum.
    private static func cpuBackward(_ spec: RecurrentSpec, _ output: TensorShape, castGradients: Bool) -> [PyTorchStep] {
        let work = (0..<4).map { BufferDeclaration(name: "surrogate.work\($0)", role: .workspace, shape: output, perTimestep: false) }
        let gradient = BufferDeclaration(name: "grad_cat", role: .workspace, shape: TensorShape([spec.weightColumns]))
        return work.map { .allocate($0) } + work.map { .free($0.name) } + [
            .eachTimestep([.allocate(gradient), .free("grad_cat")]), weightGradientSum(spec),
            .releaseSaved, .releaseOutputGradient, .inputGradient,
        ] + (castGradients ? [.castGradients] : [])
    }

    /// The weight is used once per timestep: over all timesteps autograd adds each timestep's weight
    /// gradient to the running sum out of place, so the last addition holds three weight-sized tensors
    /// (the sum so far, the last timestep's, the new sum, which becomes `.grad`). A single-step run adds
    /// into `.grad` in place, and so does a checkpoint segment whose backward finds the sum an earlier
    /// segment's left; when that is a single timestep's gradient (a transposed view), the first
    /// addition is out of place: the view, this timestep's and the new sum. The same on CUDA.
    private static func weightGradientSum(_ spec: RecurrentSpec) -> PyTorchStep {
        let weight = BufferDeclaration(name: "grad_weight.sum", role: .workspace, shape: TensorShape([spec.outFeatures, spec.weightColumns]),
                                       perSample: false, perTimestep: false)
        var lastStep = weight
        lastStep.name = "grad_weight.step"
        return .ifWeightGradient(none: [.ifMultiStep([.allocate(weight), .allocate(lastStep)]),
                                        .parameterGradients, .ifMultiStep([.free("grad_weight.sum"), .free("grad_weight.step")])],
                                 afterView: [.allocate(lastStep), .allocate(weight), .free("grad_weight.step"), .free("grad_weight.sum"),
                                             .parameterGradients],
                                 accumulating: [.parameterGradients])
    }
}
