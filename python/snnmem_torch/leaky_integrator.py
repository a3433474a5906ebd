"""The leaky integrator readout (`neuron: {type: li}`): v += (x - v) / tau, output v; no threshold, spike or
reset. SpikingJelly 2.0 has no such node, so it is the usual multi-step loop in plain PyTorch; what its
autograd keeps is what snnmem measures for it."""

import torch
import torch.nn as nn


class LeakyIntegrator(nn.Module):
    """Multi-step ([T, B, ...] in and out) or single-step, with v carried between calls until `reset()`
    (SpikingJelly's `functional.reset_net` calls it)."""

    def __init__(self, tau: float, step_mode: str = "m"):
        super().__init__()
        self.tau = float(tau)
        self.step_mode = step_mode
        self.v = None

    def reset(self):
        self.v = None

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        v = torch.zeros_like(x) if self.v is None else self.v
        self.v = v + (x - v) / self.tau
        return self.v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "s":
            return self.single_step_forward(x)
        return torch.stack([self.single_step_forward(x_t) for x_t in x])

    def extra_repr(self) -> str:
        return f"tau={self.tau}, step_mode={self.step_mode}"
