import MemoryModel
import Profiles

extension PyTorchLayerTable {
    /// The leaky integrator readout as the Python package runs it (python/snnmem_torch/leaky_integrator.py):
    /// a SpikingJelly memory module whose step is `v = torch.lerp(v, x, 1 / tau)`, the same ops on the
    /// CPU and on CUDA (SpikingJelly has no fused kernel for it). lerp with a number weight saves nothing
    /// for backward. Forward: v_init (zeros, made on the first step) and one new v per timestep, then
    /// the stack of the steps' v as the output (multi-step); the last v stays the module's v until
    /// `reset_net`. Backward: per timestep the input gradient (grad * w) and v's (grad * (1 - w)),
    /// the input gradients gathered into one [T, B, ...] tensor.
    /// Modelled coarser than measured, by at most one timestep's [B, ...] tensors per timestep: each v
    /// is freed when the next one is made (PyTorch keeps the steps' v until the stack), a single-step
    /// output is counted beside the v it is, and backward's per-timestep temporaries (two products and
    /// their sum) are one gradient per timestep. Saved bytes are exact (none).
    static func leakyIntegratorLayout(_ d: inout PyTorchLayerLayout, _ output: TensorShape, stateDType: DType) {
        let oneStep = { (name: String, role: TensorRole) in
            BufferDeclaration(name: name, role: role, shape: output, dtype: stateDType, perTimestep: false)
        }
        d.forward = [.initialState(oneStep("v_init", .neuronState), saved: false),
                     .eachTimestep([.replaceState(oneStep("v", .neuronState))]), .output]
        let step = BufferDeclaration(name: "grad_x_t", role: .workspace, shape: output)
        d.backward = [.eachTimestep([.allocate(step)]), .releaseOutputGradient, .inputGradient,
                      .eachTimestep([.free("grad_x_t")]), .releaseSaved]
    }
}
