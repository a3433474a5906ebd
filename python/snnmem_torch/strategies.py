"""One training step of a profile's network under each strategy.

bptt        multi-step: x_seq = x.unsqueeze(0).repeat(T, 1, 1, 1, 1) (layer "input"), the network
            over [T, B, ...], cross-entropy of the mean over T (layer "loss"), backward once.
sltt        single-step, as SLTT's reference code: for each t the network on x, every neuron's v
            detached from the previous timestep before it runs, loss_t = CE(out_t, y) / T,
            loss_t.backward() inside the loop; the optimizer steps after the loop.
checkpoint  multi-step over segments of k timesteps, each under
            torch.utils.checkpoint.checkpoint(use_reentrant=False, preserve_rng_state=False); the
            neuron states at a segment's start are its explicit inputs (so checkpoint saves them and
            restores them for the recomputation) and the states at its end are outputs, so gradients
            flow through v across segments as in bptt. After the forward each neuron holds its final
            state detached; the recomputation leaves the modules' states as they were. Batch norm in multi-step mode normalizes over
            the [k*B] samples of its segment, so with batch norm and k < T this is a different
            function from bptt (it equals bptt exactly without batch norm, or with k = T);
            `reference_gradients` picks the run it must equal.

Every step ends the same way: optimizer.step(), optimizer.zero_grad(set_to_none=True) (phase
"optimizer") and functional.reset_net (phase "reset"), so that at the start of every step only
parameters, buffers, optimizer state and the input batch are live.
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch
import torch.nn.functional as F

from .build import build, optimizer_for
from .errors import UsageError
from .profile import Profile
from .tracker import LayerTracker

STRATEGIES = ("bptt", "sltt", "checkpoint")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def default_segment(timesteps: int) -> int:
    """round(sqrt(T)), as Swift's Strategy.defaultSegment (half-way rounds away from zero)."""
    import math
    return max(1, int(math.floor(math.sqrt(timesteps) + 0.5)))


class Trainer:
    """A network, its optimizer and one random batch, stepping under one strategy."""

    def __init__(self, profile: Profile, strategy: str = "bptt", batch: Optional[int] = None,
                 timesteps: Optional[int] = None, segment: Optional[int] = None, device: str = "cpu", seed: int = 0):
        if strategy not in STRATEGIES:
            raise UsageError(f"unknown strategy '{strategy}'; use one of {', '.join(STRATEGIES)}")
        self.profile = profile
        self.strategy = strategy
        self.batch = batch if batch is not None else profile.batch
        self.timesteps = timesteps if timesteps is not None else profile.timesteps
        if self.batch < 1 or self.timesteps < 1:
            raise UsageError("batch and timesteps must be at least 1")
        self.segment = None
        if strategy == "checkpoint":
            self.segment = segment if segment is not None else default_segment(self.timesteps)
            if not 1 <= self.segment <= self.timesteps:
                raise UsageError(f"--segment {self.segment}: use a segment between 1 and T = {self.timesteps}")
        elif segment is not None:
            raise UsageError("--segment applies to the checkpoint strategy only")
        self.device = torch.device(device)
        self.dtype = DTYPES[profile.dtype]

        torch.manual_seed(seed)
        self.net = build(profile, step_mode="s" if strategy == "sltt" else "m").to(self.device, self.dtype)
        self.net.train()
        self.optimizer = optimizer_for(profile, self.net.parameters())
        generator = torch.Generator().manual_seed(seed + 1)
        shape = (self.batch, *profile.input_shape)
        self.x = torch.rand(shape, generator=generator).to(self.device, self.dtype)
        self.labels = torch.randint(0, profile.classes, (self.batch,), generator=generator).to(self.device)
        self.tracker = LayerTracker(self.net)
        self.neurons = self.net.neurons
        if strategy == "sltt":
            for _, module in self.neurons:
                module.register_forward_pre_hook(_detach_state)
        # Set by the saved-tensor recorder: called after each forward, before its backward.
        self.observer = None
        # Inputs of the checkpoint call being entered: [(layer path, tensor)], for attribution.
        self.checkpoint_args: Optional[list] = None
        self.loss_sequence_start: Optional[int] = None

    # ------------------------------------------------------------------------------------------

    def step(self) -> float:
        """One full training step; returns the loss."""
        if self.strategy == "sltt":
            loss_value = self._step_sltt()
        else:
            tracker = self.tracker
            with tracker.in_phase("forward"):
                loss = self.forward()
                if self.observer is not None:
                    self.observer.forward_done(self, loss, group=0)
            with tracker.in_phase("backward"):
                loss.backward()
                loss_value = float(loss.detach())
                del loss
        self._finish()
        return loss_value

    def forward(self, checkpointed: bool = True) -> torch.Tensor:
        """Forward over all timesteps (bptt, checkpoint): the loss."""
        if self.strategy == "checkpoint":
            return self._forward_segments(checkpointed)
        tracker = self.tracker
        with tracker.layer("input"):
            x_seq = self.x.unsqueeze(0).repeat(self.timesteps, 1, 1, 1, 1)
        out = self.net(x_seq)
        del x_seq
        self._mark_loss_start()
        with tracker.layer("loss"):
            return F.cross_entropy(out.mean(0), self.labels)

    def _step_sltt(self) -> float:
        tracker = self.tracker
        total = 0.0
        for t in range(self.timesteps):
            with tracker.in_phase("forward", t):
                out = self.net(self.x)
                self._mark_loss_start()
                with tracker.layer("loss"):
                    loss = F.cross_entropy(out, self.labels) / self.timesteps
                del out
                if self.observer is not None:
                    self.observer.forward_done(self, loss, group=t)
            with tracker.in_phase("backward", t):
                loss.backward()
                total += float(loss.detach())
                del loss
        return total

    def _forward_segments(self, checkpointed: bool) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        tracker = self.tracker
        k = self.segment
        with tracker.layer("input"):
            x_seq = self.x.unsqueeze(0).repeat(self.timesteps, 1, 1, 1, 1)
        states: list = [None] * len(self.neurons)
        outputs = []
        for start in range(0, self.timesteps, k):
            x_seg = x_seq[start:start + k]
            if checkpointed:
                self.checkpoint_args = [("input", x_seg)] + [(path, s) for (path, _), s in zip(self.neurons, states)]
                result = checkpoint(self._segment, x_seg, *states, use_reentrant=False, preserve_rng_state=False)
                self.checkpoint_args = None
            else:
                result = self._segment(x_seg, *states)
            outputs.append(result[0])
            states = list(result[1:])
            del result, x_seg
        del x_seq
        # As after a bptt forward, each neuron holds its last state, here detached: its graph
        # exists only inside the checkpoint (a graph hanging from v would make the recomputation
        # keep the last timestep's reset tensors until reset_net).
        for (_, module), state in zip(self.neurons, states):
            module.v = state.detach() if isinstance(state, torch.Tensor) else state
        del states
        self._mark_loss_start()
        with tracker.layer("loss"):
            out = torch.cat(outputs, 0) if len(outputs) > 1 else outputs[0]
            del outputs
            return F.cross_entropy(out.mean(0), self.labels)

    def _segment(self, x_seg: torch.Tensor, *states):
        """The network over one segment from the given neuron states: (output, *end states)."""
        tracker = self.tracker
        # Run again by checkpoint inside backward: that is the recomputation.
        phase = tracker.in_phase("recompute") if tracker.phase == "backward" else contextlib.nullcontext()
        with phase:
            depth = tracker.depth
            previous = [module.v for _, module in self.neurons]
            try:
                for (_, module), state in zip(self.neurons, states):
                    module.v = state if state is not None else module.get_reset_value("v")
                out = self.net(x_seg)
                return (out, *(module.v for _, module in self.neurons))
            finally:
                # A recomputation stopped early (checkpoint's early stop raises) leaves layers open.
                tracker.unwind_to(depth)
                # The modules keep what they held before (a recomputation must not touch their state).
                for (_, module), value in zip(self.neurons, previous):
                    module.v = value
                del previous

    def _mark_loss_start(self) -> None:
        """Remembers the autograd sequence number where the loss begins (the recorder's graph walk)."""
        if self.observer is not None and getattr(self.observer, "wants_sequence_marks", False):
            probe = torch.zeros((), requires_grad=True, device=self.device)
            self.loss_sequence_start = (probe * 1).grad_fn._sequence_nr() + 1

    def _finish(self) -> None:
        from spikingjelly.activation_based import functional

        tracker = self.tracker
        with tracker.in_phase("optimizer"):
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        with tracker.in_phase("reset"):
            functional.reset_net(self.net)

    # ------------------------------------------------------------------------------------------

    def gradients(self, checkpointed: bool = True) -> dict:
        """Parameter gradients of one forward and backward (no optimizer step), by parameter name."""
        if self.strategy == "sltt":
            raise UsageError("gradients() compares bptt and checkpoint; sltt computes a different gradient")
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.forward(checkpointed)
        loss.backward()
        from spikingjelly.activation_based import functional
        functional.reset_net(self.net)
        grads = {name: p.grad.detach().clone() for name, p in self.net.named_parameters() if p.grad is not None}
        self.optimizer.zero_grad(set_to_none=True)
        return grads


def _detach_state(module, args):
    """SLTT: the membrane potential enters each timestep detached from the previous one."""
    v = module.v
    if isinstance(v, torch.Tensor):
        module.v = v.detach()


def has_batchnorm(profile: Profile) -> bool:
    return any(layer.kind == "batchnorm" for layer in profile.all_layers)


def reference_gradients(profile: Profile, batch: int, timesteps: int, segment: int, device: str = "cpu",
                        seed: int = 0) -> tuple:
    """(max |checkpoint grad - reference grad|, reference name) for the same weights and batch.

    The reference is bptt itself when checkpointing cannot change the function (no batch norm, or
    one segment); otherwise the same segmented forward run without checkpointing ("segmented").
    """
    ckpt = Trainer(profile, "checkpoint", batch, timesteps, segment, device, seed)
    got = ckpt.gradients(checkpointed=True)
    if has_batchnorm(profile) and segment < timesteps:
        ref_trainer = Trainer(profile, "checkpoint", batch, timesteps, segment, device, seed)
        expected = ref_trainer.gradients(checkpointed=False)
        name = "segmented"
    else:
        ref_trainer = Trainer(profile, "bptt", batch, timesteps, None, device, seed)
        expected = ref_trainer.gradients()
        name = "bptt"
    if got.keys() != expected.keys():
        raise AssertionError("checkpoint and reference runs have different parameters with gradients")
    diff = max(float((got[k] - expected[k]).abs().max()) for k in got) if got else 0.0
    return diff, name
