import MemoryModel
import Profiles

extension PyTorchLayerTable {
    /// Whether the PyTorch layouts model the recurrent layer (the CPU layout; CUDA's single-step neuron
    /// op was not measured).
    static func recurrentIsModelled(on device: Device) -> Bool { device == .cpu }

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
        precondition(device == .cpu && autocast == nil, "\(layer.path): the recurrent layer is modelled on the CPU in float32 only")
        let output = layer.outputShape
        var neuron = PyTorchLayerLayout()
        neuronLayout(&neuron, spec.neuron, output, device: .cpu, stateDType: .float32)
        guard case .initialState(let vInit, _) = neuron.forward.first,
              let step = neuron.forward.lazy.compactMap({ step -> [PyTorchStep]? in
                  if case .eachTimestep(let body) = step { return body }
                  return nil
              }).first else {
            preconditionFailure("\(layer.path): the neuron's CPU script has no initial state and step loop")
        }
        let hSaved = spec.neuron.reset == .hard && !spec.neuron.detachReset
        let one = { (name: String, role: TensorRole) in BufferDeclaration(name: name, role: role, shape: output) }
        let concatenation = BufferDeclaration(name: "cat(x,y)", role: .activation, shape: TensorShape([spec.weightColumns]))
        let yInit = BufferDeclaration(name: "y_init", role: .neuronState, shape: output, perTimestep: false)
        d.keepsInput = false  // the concatenation is a new tensor; x_t itself is not kept
        d.canSkipInputGradient = true
        d.forward = [.allocate(yInit), .eachTimestep([
            .save(concatenation, heldByFinalState: false), .allocate(one("current", .workspace)), .initialState(vInit, saved: false),
        ] + step + [
            .allocate(one("y", .activation)), .allocate(one("h_seq", .workspace)), .free("h_seq"), .free("spike"),
        ] + (hSaved ? [] : [.free("h")]) + [.free("current")]), .free("y_init"), .output, .eachTimestep([.free("y")])]
        let work = (0..<4).map { BufferDeclaration(name: "surrogate.work\($0)", role: .workspace, shape: output, perTimestep: false) }
        let gradient = BufferDeclaration(name: "grad_cat", role: .workspace, shape: TensorShape([spec.weightColumns]))
        // The weight is used once per timestep: over all timesteps autograd adds each timestep's weight
        // gradient to the running sum out of place, so the last addition holds three weight-sized tensors
        // (the sum so far, the last timestep's, the new sum, which becomes `.grad`). A single-step run adds
        // into `.grad` in place.
        let weight = BufferDeclaration(name: "grad_weight.sum", role: .workspace, shape: TensorShape([spec.outFeatures, spec.weightColumns]),
                                       perSample: false, perTimestep: false)
        var lastStep = weight
        lastStep.name = "grad_weight.step"
        d.backward = work.map { .allocate($0) } + work.map { .free($0.name) } + [
            .eachTimestep([.allocate(gradient), .free("grad_cat")]), .ifMultiStep([.allocate(weight), .allocate(lastStep)]),
            .parameterGradients, .ifMultiStep([.free("grad_weight.sum"), .free("grad_weight.step")]), .releaseSaved,
            .releaseOutputGradient, .inputGradient,
        ]
    }
}
