"""The leaky integrator readout (`neuron: {type: li}`): v += (x - v) / tau, output v; no threshold, spike or
reset. SpikingJelly 2.0 has no such node, so it is a SpikingJelly memory module written here: v registered as
its memory (reset value 0., made a zero tensor on the first step, as SpikingJelly's nodes make v from v_reset),
a single-step functional forward, and SpikingJelly's own multi-step loop (one step per timestep, the steps'
outputs stacked). `functional.reset_net`, SLTT's detach of `v` and checkpointing's explicit states (`v` and
`get_reset_value("v")`) work on it as on a LIF node. What its autograd keeps is what snnmem measures for it:
nothing (`torch.lerp(v, x, 1 / tau)`, one op per timestep)."""

import torch
from spikingjelly.activation_based import base


class LeakyIntegrator(base.MemoryModule):
    """Multi-step ([T, B, ...] in and out) or single-step, with v carried between calls until `reset()`."""

    def __init__(self, tau: float, step_mode: str = "m"):
        super().__init__()
        self.tau = float(tau)
        self.step_mode = step_mode
        self.register_memory("v", 0.0)

    def materialize_states(self, inputs, states, step_mode):
        """v as a tensor: a float reset value becomes a tensor shaped as one timestep's input."""
        x = inputs[0] if step_mode == "s" else inputs[0][0]
        v = states[0]
        if not isinstance(v, torch.Tensor):
            v = torch.full_like(x, float(v))
        return (v, *states[1:])

    def single_step_functional_forward(self, inputs, states, **kwargs):
        x, v = inputs[0], states[0]
        # v + (x - v) / tau as one op: lerp with a number weight keeps nothing for backward and makes
        # only the new v (the spelled-out form makes three tensors and saves the wrapped 1 / tau).
        v = torch.lerp(v, x, 1.0 / self.tau)
        return (v,), (v,)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, step_mode={self.step_mode}"
