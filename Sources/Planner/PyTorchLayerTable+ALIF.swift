import MemoryModel
import Profiles

extension Layer {
    /// The per-sample shape of the state a PyTorch neuron module carries between calls: [2, ...] for
    /// the adaptive LIF (v and b in one tensor, python/snnmem_torch/adaptive_lif.py), the output's otherwise.
    var pytorchStateShape: TensorShape {
        if case .neuron(let spec) = kind, spec.type == .alif { return outputShape.prepending(2) }
        return outputShape
    }
}

extension PyTorchLayerTable {
    /// The adaptive LIF as the Python package runs it (`AdaptiveLIFNode`, one autograd function over the
    /// T timesteps of a call), the same ops on the CPU and on CUDA. Forward: a zero state [2, B, ...] when
    /// the module has none (freed when the call ends), then h_seq and b_seq (saved), the spikes (the
    /// output) and the new state (a clone of the old one, updated in place); each timestep makes the
    /// threshold θ = threshold + beta b and the bool mask h >= θ, both freed within the timestep.
    /// Backward: the input gradient first (written timestep by timestep), dL/dv and dL/db as one [2, B, ...]
    /// tensor, and per timestep θ, h - θ (turned into the surrogate's slope in place), the bool mask and
    /// the spike as floats (the sigmoid's slope squares once more); then the saved h_seq and b_seq die.
    /// Nothing of the input is kept: dh/dx is 1 / tau.
    static func alifLayout(_ d: inout PyTorchLayerLayout, _ spec: NeuronSpec, _ output: TensorShape) {
        let pair = { (name: String, role: TensorRole) in
            BufferDeclaration(name: name, role: role, shape: output.prepending(2), perTimestep: false)
        }
        let step = { (name: String, role: TensorRole) in BufferDeclaration(name: name, role: role, shape: output) }
        let oneStep = { (name: String, dtype: DType?) in
            BufferDeclaration(name: name, role: .workspace, shape: output, dtype: dtype, perTimestep: false)
        }
        d.forward = [.initialState(pair("v,b init", .neuronState), saved: false),
                     .save(step("h_seq", .neuronState), heldByFinalState: false),
                     .save(step("b_seq", .neuronState), heldByFinalState: false),
                     .output, .replaceState(pair("v,b", .neuronState)),
                     .eachTimestep([.allocate(step("theta", .workspace)),
                                    .allocate(BufferDeclaration(name: "h>=theta", role: .workspace, shape: output, dtype: .bool)),
                                    .free("theta"), .free("h>=theta")])]
        let slope: [PyTorchStep] = spec.surrogate == .sigmoid ? [.allocate(oneStep("sigmoid^2", nil)), .free("sigmoid^2")] : []
        d.backward = [.inputGradient, .allocate(pair("dv,db", .workspace)),
                      .allocate(oneStep("theta", nil)), .allocate(oneStep("h-theta", nil)), .allocate(oneStep("h>=theta", .bool)),
                      .allocate(oneStep("spike", nil)), .free("h>=theta")] + slope + [
                      .free("theta"), .free("h-theta"), .free("spike"), .free("dv,db"),
                      .releaseSaved, .releaseOutputGradient]
    }
}
