"""Reversible stages (RevSNN, Zhang & Zhang, AAAI 2024) in PyTorch + SpikingJelly.

A profile's `reversible:` stage splits its input's channels in halves and runs each block as
Y1 = X1 + F(X2), Y2 = X2 + G(Y1) over all timesteps at once (F and G are layer lists mapping a
half to a half; Sources/Profiles/ReversibleStage.swift). Tensors are [T, B, C, H, W] in
multi-step mode (channels: dim 2) and [B, C, H, W] in single-step mode (sltt: dim 1); the split
is `chunk(2, dim)` (two views, no copy) and the halves are joined with `torch.cat` (a new tensor).

Two ways to run a stage:

autograd  (bptt, sltt, checkpoint) ordinary autograd through F and G: every layer inside the stage
          keeps its saved tensors as it would outside one; the adds and the cat save nothing.
revsnn    RevSNN's custom autograd function, written after its reference code (mi804/RevSNN,
          `revtorch.py`): the forward runs every block under no_grad and keeps only the stage
          output, as the reference does, in the function's context (`ctx.y`, not
          save_for_backward, so that backward can drop it as soon as the last block is inverted);
          the blocks' neurons are reset after the stage. Backward goes block by block from the
          last: split y and dy; G(Y1) recomputed with grad (neurons from reset), its backward with
          dY2 run at once (G's parameter gradients accumulate, dY1_G lands in Y1.grad), G's neurons
          reset; X2 = Y2 - G(Y1), dX1 = dY1 + Y1.grad; F(X2) recomputed with grad, backward with dX1,
          F's neurons reset; X1 = Y1 - F(X2), dX2 = dY2 + X2.grad; X = cat(X1, X2), dX = cat(dX1, dX2).
          One F or G graph over all T exists at a time.

Measurement: the F and G recomputations run in phase "recompute" (the tracker's phase range, so
every allocation inside them, frees between their layers included, is "recompute"); their
backward, the reconstruction subtractions, the gradient adds and the cats are "backward". The
saved-tensor recorder ignores what is saved during recomputation (as for checkpoint); what the
function keeps (`ctx.y`) is reported to it explicitly, as layer = the stage's path.

`verify` compares revsnn's parameter gradients with bptt's (same weights, same batch) and gives
the reconstruction error of every block's input.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch
import torch.nn as nn

KEPT_NAME = "RevSNNStageBackward.ctx.y"
MODES = ("autograd", "revsnn")


def _reset(module: nn.Module) -> None:
    from spikingjelly.activation_based import functional
    functional.reset_net(module)


class ReversibleBlock(nn.Module):
    """One coupling block; `f` and `g` are nn.Sequential of the profile's layers."""

    def __init__(self, path: str, f: nn.Sequential, g: nn.Sequential):
        super().__init__()
        self.path = path
        self.f = f
        self.g = g

    def coupled(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        """Y = cat(X1 + F(X2), X2 + G(Y1)): autograd records it unless grad is off."""
        x1, x2 = x.chunk(2, dim)
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim)

    def invert(self, y: torch.Tensor, dy: torch.Tensor, dim: int, stage: "ReversibleStage") -> tuple:
        """Backward of one block from its output: (X, dX); F's and G's parameter gradients accumulate."""
        y1, y2 = y.chunk(2, dim)
        dy1, dy2 = dy.chunk(2, dim)
        del y, dy
        y1.requires_grad_(True)
        with torch.enable_grad(), stage.recomputing():
            gy1 = self.g(y1)
        torch.autograd.backward(gy1, dy2)
        _reset(self.g)
        with torch.no_grad():
            x2 = y2 - gy1
            del y2, gy1
            dx1 = dy1 + y1.grad
            del dy1
            y1.grad = None
        x2.requires_grad_(True)
        with torch.enable_grad(), stage.recomputing():
            fx2 = self.f(x2)
        torch.autograd.backward(fx2, dx1)
        _reset(self.f)
        with torch.no_grad():
            x1 = y1 - fx2
            del y1, fx2
            dx2 = dy2 + x2.grad
            del dy2
            x2.grad = None
            x = torch.cat([x1, x2.detach()], dim)
            dx = torch.cat([dx1, dx2], dim)
        return x, dx


class RevSNNStage(torch.autograd.Function):
    """A whole reversible stage as one autograd node that keeps only its output."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, stage: "ReversibleStage") -> torch.Tensor:
        # Autograd is off inside forward: no block records a graph or saves a tensor.
        dim = x.dim() - 3
        if stage.debug is not None:
            stage.debug["inputs"] = []
        y = x
        for block in stage.blocks:
            if stage.debug is not None:
                stage.debug["inputs"].append(y.detach().clone())
            y = block.coupled(y, dim)
        ctx.stage = stage
        ctx.dim = dim
        ctx.y = y.detach()
        ctx.autocast = stage.autocast_state(x.device.type)
        stage.report_kept(ctx.y)
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        stage, dim = ctx.stage, ctx.dim
        stage.backward_autocast = ctx.autocast
        y = ctx.y
        del ctx.y
        for index in range(len(stage.blocks) - 1, -1, -1):
            y, dy = stage.blocks[index].invert(y, dy, dim, stage)
            if stage.debug is not None:
                stage.debug.setdefault("reconstructed", {})[index] = y.detach().clone()
        stage.backward_autocast = None
        return dy, None


class ReversibleStage(nn.Module):
    """A profile's reversible stage; `mode` is "autograd" (plain) or "revsnn" (the custom function)."""

    def __init__(self, path: str, blocks: list):
        super().__init__()
        self.path = path
        self.blocks = nn.ModuleList([ReversibleBlock(block_path, f, g) for block_path, f, g in blocks])
        self.mode = "autograd"
        self.tracker = None        # the Trainer's LayerTracker: phase "recompute" around F and G reruns
        self.owner = None          # the Trainer: its `observer` (the saved-tensor recorder) hears of ctx.y
        self.debug: Optional[dict] = None  # {} to collect block inputs and their reconstructions
        self.backward_autocast = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "revsnn" and torch.is_grad_enabled():
            y = RevSNNStage.apply(x, self)
            # As the reference: the neurons start every recomputation from their reset state.
            _reset(self.blocks)
            return y
        dim = x.dim() - 3
        for block in self.blocks:
            x = block.coupled(x, dim)
        return x

    # -- helpers of the custom function --------------------------------------------------------

    @staticmethod
    def autocast_state(device_type: str) -> Optional[torch.dtype]:
        if torch.is_autocast_enabled(device_type):
            return torch.get_autocast_dtype(device_type)
        return None

    def recomputing(self):
        """The context of an F or G recomputation: phase "recompute", the forward's autocast state."""
        stack = contextlib.ExitStack()
        if self.tracker is not None:
            stack.enter_context(self.tracker.in_phase("recompute"))
        dtype = self.backward_autocast
        if dtype is not None:
            device_type = "cuda" if any(p.is_cuda for p in self.parameters()) else "cpu"
            stack.enter_context(torch.autocast(device_type, dtype=dtype))
        return stack

    def report_kept(self, y: torch.Tensor) -> None:
        observer = getattr(self.owner, "observer", None) if self.owner is not None else None
        keep = getattr(observer, "keep", None)
        if keep is not None:
            keep(y, self.path, KEPT_NAME)


def stages(net: nn.Module) -> list:
    return [m for m in net.modules() if isinstance(m, ReversibleStage)]


def configure(trainer, mode: str) -> None:
    """Sets every reversible stage of `trainer.net` to `mode` and ties it to the trainer's tracker."""
    if mode not in MODES:
        raise ValueError(mode)
    for stage in stages(trainer.net):
        stage.mode = mode
        stage.tracker = trainer.tracker
        stage.owner = trainer


# ----------------------------------------------------------------------------------------------
# Verification


def verify(profile, batch: int, timesteps: int, device: str = "cpu", seed: int = 0,
           dtype: Optional[str] = None) -> dict:
    """revsnn against bptt on the same weights and batch: gradient differences and reconstruction errors.

    maxAbsGradDiff: max over parameters of max |g_revsnn - g_bptt|; maxRelGradDiff: max over
    parameters of that difference over max |g_bptt| of the parameter. reconstruction: per stage
    and block, max |X reconstructed - X of the forward| and the same over max |X|.
    """
    from .strategies import Trainer

    rev = Trainer(profile, "revsnn", batch, timesteps, None, device, seed, dtype)
    for stage in stages(rev.net):
        stage.debug = {}
    got = rev.gradients()
    reconstruction = []
    for stage in stages(rev.net):
        inputs = stage.debug.get("inputs", [])
        rebuilt = stage.debug.get("reconstructed", {})
        for index, original in enumerate(inputs):
            x = rebuilt.get(index)
            diff = float((x - original).abs().max()) if x is not None else float("inf")
            scale = float(original.abs().max()) or 1.0
            reconstruction.append({"block": stage.blocks[index].path, "maxAbsError": diff, "maxRelError": diff / scale})
        stage.debug = None
    ref = Trainer(profile, "bptt", batch, timesteps, None, device, seed, dtype)
    expected = ref.gradients()
    if got.keys() != expected.keys():
        raise AssertionError("revsnn and bptt runs have different parameters with gradients")
    max_abs = max_rel = 0.0
    for name in got:
        diff = float((got[name] - expected[name]).abs().max())
        scale = float(expected[name].abs().max())
        max_abs = max(max_abs, diff)
        max_rel = max(max_rel, diff / scale if scale > 0 else (0.0 if diff == 0 else float("inf")))
    return {"reference": "bptt", "maxAbsGradDiff": max_abs, "maxRelGradDiff": max_rel,
            "maxReconstructionError": max((r["maxAbsError"] for r in reconstruction), default=0.0),
            "reconstruction": reconstruction}
