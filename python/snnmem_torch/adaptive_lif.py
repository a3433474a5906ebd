"""The adaptive LIF neuron (`neuron: {type: alif}`): Bellec et al. 2018's adaptive threshold (the LSNN) on
SpikingJelly's LIF charge. SpikingJelly 2.0 has no such node, so it is a SpikingJelly memory module here,
resettable by `functional.reset_net`, in single-step and multi-step mode, whose autograd is one function over
all timesteps that saves exactly what snnmem's layouts declare:

    h_t = v + (x_t - (v - leak)) / tau           (leak = v_reset, or 0 with a soft reset)
    theta_t = v_threshold + beta * b_t           s_t = Heaviside(h_t - theta_t)
    v = h_t (1 - s_t) + v_reset s_t   or   v = h_t - s_t theta_t (soft)
    b_{t+1} = rho * b_t + (1 - rho) * s_t

Saved for backward: h and b of every timestep ([T, B, ...] each). The two states travel as one tensor `v` of
shape [2, B, ...] (v, then b), so that SpikingJelly's reset, SLTT's detach and the checkpointed segments, which
carry one `v` per neuron, carry both. The gradient flows through the adaptation; `detach_reset` detaches only
the reset's spike, as SpikingJelly's."""

import math
from typing import Optional

import torch
from spikingjelly.activation_based import base


class _ALIFFunction(torch.autograd.Function):
    """(x_seq [T, B, ...], state [2, B, ...]) -> (spike_seq, state after the last timestep). Every
    intermediate is written into preallocated tensors or two [B, ...] temporaries a timestep, so that
    what it allocates is a short, declared list (Sources/Planner/PyTorchLayerTable+ALIF.swift)."""

    @staticmethod
    def forward(ctx, x_seq, state, cfg):
        ctx.set_materialize_grads(False)
        h_seq = torch.empty_like(x_seq)
        b_seq = torch.empty_like(x_seq)
        spike_seq = torch.empty_like(x_seq)
        out_state = state.clone()
        v, b = out_state[0], out_state[1]
        for t in range(x_seq.shape[0]):
            h = h_seq[t]
            torch.mul(v, 1 - 1 / cfg.tau, out=h)
            h.add_(x_seq[t], alpha=1 / cfg.tau)
            if cfg.leak != 0:
                h.add_(cfg.leak / cfg.tau)
            b_seq[t].copy_(b)
            theta = b * cfg.beta
            theta.add_(cfg.threshold)
            fired = h >= theta
            spike_seq[t].copy_(fired)
            v.copy_(h)
            if cfg.v_reset is None:
                v.sub_(theta.mul_(spike_seq[t]))
            else:
                v.masked_fill_(fired, cfg.v_reset)
            b.mul_(cfg.rho).add_(spike_seq[t], alpha=1 - cfg.rho)
            del theta, fired
        ctx.save_for_backward(h_seq, b_seq)
        ctx.cfg = cfg
        ctx.mark_non_differentiable()
        return spike_seq, out_state

    @staticmethod
    def backward(ctx, grad_spike_seq, grad_state):
        cfg = ctx.cfg
        h_seq, b_seq = ctx.saved_tensors
        grad_x = torch.empty_like(h_seq)
        # dL/dv and dL/db carried back through time: zero after the last timestep unless the next
        # checkpointed segment sent them.
        d_state = h_seq.new_zeros((2,) + tuple(h_seq.shape[1:])) if grad_state is None else grad_state.clone()
        dv, db = d_state[0], d_state[1]
        decay, gain = 1 - 1 / cfg.tau, 1 / cfg.tau
        slope = 0.0 if cfg.detach_reset else 1.0
        for t in reversed(range(h_seq.shape[0])):
            h, g = h_seq[t], grad_x[t]
            theta = b_seq[t] * cfg.beta
            theta.add_(cfg.threshold)
            sg = torch.sub(h, theta)
            spike = (sg >= 0).to(h.dtype)
            _surrogate_derivative_(sg, cfg)
            # dS = dSpike + (1 - rho) dB' + dV' dv'/ds, into g
            if grad_spike_seq is None:
                g.zero_()
            else:
                g.copy_(grad_spike_seq[t])
            g.add_(db, alpha=1 - cfg.rho)
            if slope:
                if cfg.v_reset is None:
                    g.addcmul_(theta, dv, value=-1.0)
                else:
                    g.addcmul_(h, dv, value=-1.0).add_(dv, alpha=cfg.v_reset)
            g.mul_(sg)  # dM
            # dB = rho dB' + beta dθ, dθ = -dM (- dV' s for a soft reset)
            db.mul_(cfg.rho).add_(g, alpha=-cfg.beta)
            if cfg.v_reset is None:
                db.addcmul_(dv, spike, value=-cfg.beta)
            # dH = dM + dV' dv'/dh
            g.add_(dv)
            if cfg.v_reset is not None:
                g.addcmul_(dv, spike, value=-1.0)
            torch.mul(g, decay, out=dv)
            g.mul_(gain)
            del theta, sg, spike
        return grad_x, (d_state if ctx.needs_input_grad[1] else None), None


def _surrogate_derivative_(m: torch.Tensor, cfg) -> None:
    """SpikingJelly's ATan or Sigmoid surrogate gradient of m = h - theta, in place."""
    if cfg.surrogate == "atan":
        m.mul_(math.pi / 2 * cfg.alpha).square_().add_(1).reciprocal_().mul_(cfg.alpha / 2)
    else:
        m.mul_(cfg.alpha).sigmoid_()
        m.sub_(m.square()).mul_(cfg.alpha)


class _Config:
    def __init__(self, tau, threshold, v_reset, rho, beta, surrogate, alpha, detach_reset):
        self.tau, self.threshold, self.v_reset = float(tau), float(threshold), v_reset
        self.leak = 0.0 if v_reset is None else float(v_reset)
        self.rho, self.beta = float(rho), float(beta)
        self.surrogate, self.alpha, self.detach_reset = surrogate, float(alpha), bool(detach_reset)


class AdaptiveLIFNode(base.MemoryModule):
    """Multi-step ([T, B, ...]) or single-step. `v_reset=None` is a soft reset (by the adapted threshold).
    `surrogate`: "atan" or "sigmoid" with `alpha`, as SpikingJelly's surrogate.ATan / surrogate.Sigmoid."""

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0, rho: float = 0.9,
                 beta: float = 1.8, surrogate: str = "atan", alpha: float = 2.0, detach_reset: bool = False,
                 step_mode: str = "m"):
        super().__init__()
        if not tau >= 1:
            raise ValueError(f"tau must be at least 1 (a decay 1 - 1/tau in [0, 1)), got {tau}")
        if not 0 <= rho < 1:
            raise ValueError(f"rho must be in [0, 1), got {rho}")
        if not beta >= 0:
            raise ValueError(f"beta must be 0 or more, got {beta}")
        if surrogate not in ("atan", "sigmoid"):
            raise ValueError(f"surrogate must be 'atan' or 'sigmoid', got {surrogate!r}")
        self.cfg = _Config(tau, v_threshold, v_reset, rho, beta, surrogate, alpha, detach_reset)
        self.register_memory("v", None)
        self.step_mode = step_mode

    def supported_step_mode(self):
        return ("s", "m")

    # Read by the exporter and by extra_repr.
    tau = property(lambda self: self.cfg.tau)
    v_threshold = property(lambda self: self.cfg.threshold)
    v_reset = property(lambda self: self.cfg.v_reset)
    rho = property(lambda self: self.cfg.rho)
    beta = property(lambda self: self.cfg.beta)
    detach_reset = property(lambda self: self.cfg.detach_reset)

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        """[2, B, ...]: v at v_reset (0 for a soft reset), no adaptation."""
        state = torch.zeros((2,) + tuple(x.shape), dtype=x.dtype, device=x.device)
        if self.cfg.leak != 0:
            state[0].fill_(self.cfg.leak)
        return state

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        state = self.v if isinstance(self.v, torch.Tensor) else self.initial_state(x_seq[0])
        spike_seq, self.v = _ALIFFunction.apply(x_seq, state, self.cfg)
        return spike_seq

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.multi_step_forward(x.unsqueeze(0))[0]

    def extra_repr(self) -> str:
        c = self.cfg
        return (f"tau={c.tau}, v_threshold={c.threshold}, v_reset={c.v_reset}, rho={c.rho}, beta={c.beta}, "
                f"surrogate={c.surrogate}(alpha={c.alpha}), detach_reset={c.detach_reset}, step_mode={self.step_mode}")
