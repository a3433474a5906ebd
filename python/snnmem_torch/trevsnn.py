"""T-RevSNN (Hu et al., ICML 2024; code BICLab/T-RevSNN, built on RevCol) in PyTorch + SpikingJelly.

A profile's `trevsnn:` network (profile.TRevSpec, Swift's `TRevNetwork`) runs after the stem. The
stem runs once on the images [B, ...] (they are not repeated over T); then one column per timestep,
each with its own weights, computes level by level

    c[l][t] = F_l(c[l-1][t], c[l+1][t-1]) + alpha_l * c[l][t-1]        (c[-1][t] = stem output, c[l][-1] = 0)

with F_l = blocks(down(c[l-1][t]) + up(c[l+1][t-1])): at the first column, and at the top level, there
is no up path (the reference's `Fusion`). Every tensor is one timestep's [B, C, H, W] (single-step
modules). Each column's head (turn-off neuron, average pool over the top map, flatten, linear) scores
its top level; the loss is the mean over columns of their cross-entropies (intermediate supervision),
as snnmem's engine (`crossEntropyPerTimestep`). Column 0's up paths and alphas exist (snnmem declares
them for every column) but take part in nothing (there is no previous column), so they get no
gradient and the optimizer keeps no state for them and skips them in its step.

The layers only T-RevSNN uses:
- turn-off neuron: stateless, spike = H(x - threshold) with the profile's surrogate gradient, written as
  SpikingJelly's surrogate function on x - threshold (no membrane potential, nothing to reset);
- scale: one learnable scalar times the input (`x * scale`, MulBackward0 keeps x);
- upsample: nearest-neighbour `F.interpolate(scale_factor=factor)` (keeps sizes only).

Two ways to run the network:

autograd  (bptt) plain autograd through the columns: every layer keeps its saved tensors for every
          column, and `c + alpha * c_prev` keeps c_prev (MulBackward0) for alpha's gradient.
trevsnn   one `torch.autograd.Function` (`TRevSNNFunction`) over all columns, after the reference's
          `ReverseFunction` (models/rev_function.py): its forward runs every column under no_grad and
          returns each column's logits; it keeps only the stem output and the last column's level
          states, in its context (not save_for_backward, as RevSNN's `ctx.y`, reported to the
          measurement by the function). The reference keeps each column's states (one function per
          column, each saving its outputs); the reversible design needs only the last column's, since
          c[l][t-1] = (c[l][t] - F_l(c[l-1][t], c[l+1][t-1])) / alpha_l rebuilds the earlier ones, and
          snnmem's engine keeps only those: this function keeps what the engine keeps.
          Backward, column by column from the last: the head rerun with a graph on c[top][t] and
          backpropagated from the logits' gradient; then from the top level down, one level at a time,
          F_l rerun with a graph on c[l-1][t] (a leaf, or the stem output) and c[l+1][t-1] (rebuilt by
          the level above just before), c[l][t-1] = (c[l][t] - F_l) / alpha_l rebuilt, F_l
          backpropagated from c[l][t]'s gradient (parameter gradients accumulate, the inputs' gradients
          land in their leaves' .grad), and `c[l][t-1] * alpha_l` backpropagated from the same gradient
          (alpha's gradient and alpha * dc[l][t] into c[l][t-1].grad, as the reference's "alpha update").
          Every state is a leaf whose .grad gathers what reaches it (the head, the down path of the level
          above, the up path and the alpha term of the next column), so when its level's turn comes
          .grad is its whole gradient. One level's F_l graph exists at a time.

Measurement: reruns are phase "recompute"; the saved-tensor recorder ignores what they save.
`verify` compares trevsnn's parameter gradients with bptt's on the same weights and batch and
gives the reconstruction error of every rebuilt state.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

MODES = ("autograd", "trevsnn")
KEPT_STEM = "TRevSNNFunctionBackward.ctx.stem"
KEPT_STATE = "TRevSNNFunctionBackward.ctx.states[{}]"


class TurnOffNeuron(nn.Module):
    """T-RevSNN's stateless neuron: spike = H(x - threshold), the surrogate's gradient in backward."""

    def __init__(self, threshold: float, surrogate: nn.Module):
        super().__init__()
        self.threshold = threshold
        self.surrogate = surrogate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.surrogate(x - self.threshold)


class Scale(nn.Module):
    """A learnable scalar times the input (ReZero / layer scale), snnmem's `scale` layer."""

    def __init__(self, initial: float):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), float(initial)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class Upsample(nn.Module):
    """Nearest-neighbour upsampling by an integer factor, snnmem's `upsample` layer."""

    def __init__(self, factor: int):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.factor, mode="nearest")


class Level(nn.Module):
    """One level of one column: F_l(below, above) = blocks(down(below) + up(above))."""

    def __init__(self, path: str, channels: int, down: nn.Sequential, up: Optional[nn.Sequential], blocks: nn.Sequential):
        super().__init__()
        self.path = path
        self.channels = channels
        self.down = down
        self.up = up
        self.blocks = blocks

    def f(self, below: torch.Tensor, above: Optional[torch.Tensor]) -> torch.Tensor:
        x = self.down(below)
        if above is not None and self.up is not None:
            x = x + self.up(above)
        return self.blocks(x)


class Column(nn.Module):
    """One timestep's column: its levels, their alphas (one per channel) and its head."""

    def __init__(self, prefix: str, levels: list, alpha_init: float, head: nn.Sequential):
        super().__init__()
        self.prefix = prefix
        self.levels = nn.ModuleList(levels)
        self.alphas = nn.ParameterList([nn.Parameter(torch.full((level.channels,), float(alpha_init))) for level in levels])
        self.head = head

    def alpha(self, l: int) -> torch.Tensor:
        """alpha_l as [1, C, 1, 1], a view of the parameter."""
        return self.alphas[l].view(1, -1, 1, 1)

    def run(self, below0: torch.Tensor, previous: Optional[list], tracker=None) -> list:
        """The column's level states from the stem output and the previous column's states (None at t = 0)."""
        states = []
        for l, level in enumerate(self.levels):
            below = below0 if l == 0 else states[l - 1]
            above = previous[l + 1] if previous is not None and l + 1 < len(self.levels) else None
            value = level.f(below, above)
            if previous is not None:
                with _layer(tracker, self.prefix + level.path):
                    # The reference's `l(x, c_up) + c * alpha`: MulBackward0 keeps c[l][t-1] for alpha's gradient.
                    value = value + previous[l] * self.alpha(l)
            states.append(value)
        return states


def _layer(tracker, path: str):
    return tracker.layer(path) if tracker is not None else contextlib.nullcontext()


class TRevNet(nn.Module):
    """The `trevsnn:` network: stem output [B, C, H, W] in, each column's logits out (a list of T)."""

    def __init__(self, path: str, columns: list):
        super().__init__()
        self.path = path
        self.columns = nn.ModuleList(columns)
        self.mode = "autograd"
        self.tracker = None        # the Trainer's LayerTracker: phase "recompute" around the reruns
        self.owner = None          # the Trainer: its `observer` (the saved-tensor recorder) hears of what ctx keeps
        self.debug: Optional[dict] = None  # {} to collect the forward's states and their reconstructions

    def forward(self, stem: torch.Tensor) -> list:
        if self.mode == "trevsnn" and torch.is_grad_enabled():
            return list(TRevSNNFunction.apply(stem, self))
        previous = None
        logits = []
        for column in self.columns:
            previous = column.run(stem, previous, self.tracker)
            logits.append(column.head(previous[-1]))
        return logits

    # -- helpers of the custom function --------------------------------------------------------

    def recomputing(self):
        return self.tracker.in_phase("recompute") if self.tracker is not None else contextlib.nullcontext()

    def report_kept(self, tensor: torch.Tensor, name: str) -> None:
        observer = getattr(self.owner, "observer", None) if self.owner is not None else None
        keep = getattr(observer, "keep", None)
        if keep is not None:
            keep(tensor, self.path, name)


class TRevSNNFunction(torch.autograd.Function):
    """All columns as one autograd node that keeps the stem output and the last column's states."""

    @staticmethod
    def forward(ctx, stem: torch.Tensor, net: TRevNet):
        # Autograd is off inside forward: no column records a graph or saves a tensor.
        previous = None
        logits = []
        for t, column in enumerate(net.columns):
            previous = column.run(stem, previous)
            if net.debug is not None:
                net.debug.setdefault("states", {})[t] = [s.detach().clone() for s in previous]
            logits.append(column.head(previous[-1]))
        ctx.net = net
        ctx.stem = stem.detach()
        ctx.states = [s.detach() for s in previous]
        del previous
        net.report_kept(ctx.stem, KEPT_STEM)
        for l, state in enumerate(ctx.states):
            net.report_kept(state, KEPT_STATE.format(l))
        return tuple(logits)

    @staticmethod
    def backward(ctx, *grad_logits):
        net = ctx.net
        stem = ctx.stem.requires_grad_(True)  # a leaf: every column's level-0 down path adds into stem.grad
        states = [s.requires_grad_(True) for s in ctx.states]
        del ctx.stem, ctx.states
        top = len(states) - 1
        for t in range(len(net.columns) - 1, -1, -1):
            column = net.columns[t]
            with torch.enable_grad():
                with net.recomputing():
                    logits = column.head(states[top])
                torch.autograd.backward(logits, grad_logits[t])
                del logits
                previous: list = [None] * len(states)
                for l in range(top, -1, -1):
                    level = column.levels[l]
                    below = stem if l == 0 else states[l - 1]
                    above = previous[l + 1] if t > 0 and l < top else None
                    with net.recomputing():
                        value = level.f(below, above)
                    if t > 0:
                        with torch.no_grad():
                            # c[l][t-1] = (c[l][t] - F_l) / alpha_l
                            rebuilt = (states[l] - value) / column.alpha(l)
                        previous[l] = rebuilt.requires_grad_(True)
                        if net.debug is not None:
                            net.debug.setdefault("reconstructed", {}).setdefault(t - 1, {})[l] = rebuilt.detach().clone()
                        del rebuilt
                    gradient = states[l].grad
                    torch.autograd.backward(value, gradient)
                    del value
                    if t > 0:
                        # alpha_l's gradient sum(dc[l][t] * c[l][t-1]) and dc[l][t-1] += alpha_l * dc[l][t].
                        torch.autograd.backward(previous[l] * column.alpha(l), gradient)
                    del gradient
                    states[l].grad = None
            states = previous
            del previous
        grad_stem = stem.grad
        stem.grad = None
        return grad_stem, None


def networks(net: nn.Module) -> list:
    return [m for m in net.modules() if isinstance(m, TRevNet)]


def configure(trainer, mode: str) -> None:
    """Sets the T-RevSNN network of `trainer.net` to `mode` and ties it to the trainer's tracker."""
    if mode not in MODES:
        raise ValueError(mode)
    for net in networks(trainer.net):
        net.mode = mode
        net.tracker = trainer.tracker
        net.owner = trainer


def column_loss(logits: list, labels: torch.Tensor) -> torch.Tensor:
    """The mean over columns of each column's cross-entropy (snnmem's `crossEntropyPerTimestep`)."""
    loss = F.cross_entropy(logits[0], labels)
    for scores in logits[1:]:
        loss = loss + F.cross_entropy(scores, labels)
    return loss / len(logits)


# ----------------------------------------------------------------------------------------------
# Verification


def verify(profile, batch: int, timesteps: int, device: str = "cpu", seed: int = 0) -> dict:
    """trevsnn against bptt on the same weights and batch: gradient differences and reconstruction errors.

    maxAbsGradDiff / maxRelGradDiff as reversible.verify; reconstruction: per column t < T-1 and level,
    max |c[l][t] rebuilt - c[l][t] of the forward| and that over max |c[l][t]|.
    """
    from .strategies import Trainer

    rev = Trainer(profile, "trevsnn", batch, timesteps, None, device, seed)
    for net in networks(rev.net):
        net.debug = {}
    got = rev.gradients()
    reconstruction = []
    for net in networks(rev.net):
        forward = net.debug.get("states", {})
        rebuilt = net.debug.get("reconstructed", {})
        for t in range(len(net.columns) - 1):
            for l, original in enumerate(forward.get(t, [])):
                x = rebuilt.get(t, {}).get(l)
                diff = float((x - original).abs().max()) if x is not None else float("inf")
                scale = float(original.abs().max()) or 1.0
                reconstruction.append({"column": t, "level": net.columns[t].levels[l].path, "maxAbsError": diff,
                                       "maxRelError": diff / scale})
        net.debug = None
    ref = Trainer(profile, "bptt", batch, timesteps, None, device, seed)
    expected = ref.gradients()
    if got.keys() != expected.keys():
        raise AssertionError(f"trevsnn and bptt runs have different parameters with gradients: "
                             f"{sorted(set(got) ^ set(expected))}")
    max_abs = max_rel = 0.0
    for name in got:
        diff = float((got[name] - expected[name]).abs().max())
        scale = float(expected[name].abs().max())
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")))
    return {"reference": "bptt", "maxAbsGradDiff": max_abs, "maxRelGradDiff": max_rel,
            "maxReconstructionError": max((r["maxAbsError"] for r in reconstruction), default=0.0),
            "maxRelReconstructionError": max((r["maxRelError"] for r in reconstruction), default=0.0),
            "reconstruction": reconstruction}
