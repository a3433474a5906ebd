"""One training step of a profile's network under each strategy.

bptt        multi-step: x_seq = x.unsqueeze(0).repeat(T, 1, 1, 1, 1) (layer "input"; event frames are the [T, B, ...] batch itself), the network
            over [T, B, ...], cross-entropy of the mean over T (layer "loss"), backward once.
sltt        single-step, as SLTT's reference code: for each t the network on x, every neuron's v
            detached from the previous timestep before it runs, loss_t = CE(out_t, y) / T,
            loss_t.backward() inside the loop; the optimizer steps after the loop.
revsnn      as bptt, but each reversible stage is one RevSNN autograd function that keeps only its
            output and reconstructs its blocks' inputs in backward (reversible.py).
trevsnn     a profile with a `trevsnn:` network (trevsnn.py): the stem once on the images, the columns
            one per timestep, the loss the mean of the columns' cross-entropies; the whole network is
            one T-RevSNN autograd function that keeps the stem output and the last column's states
            and rebuilds the earlier columns in backward. bptt on such a profile runs the same network
            under plain autograd; sltt, checkpoint and revsnn do not apply to it (as in Swift).
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

Mixed precision (dtype float16 or bfloat16) is run as users run it: the model stays float32 (master
weights, gradients and optimizer state in float32, the input batch float32) and the forward and the
loss run under torch.autocast(device_type, dtype). bptt and checkpoint: one autocast region over the
whole forward and the loss; sltt: one region per timestep (its forward and loss), so autocast's
weight cache, cleared when a region exits, casts every weight again at each timestep. Backward and
the optimizer run outside autocast. float16 adds torch.amp.GradScaler(device_type):
scaler.scale(loss).backward() (phase "backward"), scaler.step(optimizer) and scaler.update() (phase
"optimizer"); bfloat16 has no scaler. checkpoint's recomputation runs under the autocast state of the
forward: torch.utils.checkpoint (non-reentrant) records it when the segment runs and re-enters it
around the recomputation (a region of its own, so the weights are cast again per recomputation).
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

STRATEGIES = ("bptt", "sltt", "checkpoint", "revsnn", "trevsnn")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Upper bound on warm-up steps while a float16 GradScaler backs its scale off from 2**16 (each step
# with an inf/NaN gradient is skipped and halves the scale); steady state is a step that was taken.
MAX_WARM_UP_STEPS = 40


def default_segment(timesteps: int) -> int:
    """round(sqrt(T)), as Swift's Strategy.defaultSegment (half-way rounds away from zero)."""
    import math
    return max(1, int(math.floor(math.sqrt(timesteps) + 0.5)))


class Trainer:
    """A network, its optimizer and one random batch, stepping under one strategy."""

    def __init__(self, profile: Profile, strategy: str = "bptt", batch: Optional[int] = None,
                 timesteps: Optional[int] = None, segment: Optional[int] = None, device: str = "cpu", seed: int = 0,
                 dtype: Optional[str] = None, net=None):
        """`net`: a network to step instead of the profile's rebuilt one (`snnmem-torch check` passes the
        user's own model, wrapped to offer `layers` and `neurons` as the builder's `Network` does)."""
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
        self.dtype_name = dtype if dtype is not None else profile.dtype
        if self.dtype_name not in DTYPES:
            raise UsageError(f"dtype '{self.dtype_name}': use one of {', '.join(DTYPES)}")
        self.dtype = DTYPES[self.dtype_name]
        # Mixed precision: the autocast dtype (None for float32); the model and the batch stay float32.
        self.autocast_dtype = None if self.dtype is torch.float32 else self.dtype
        if self.autocast_dtype is not None and not torch.amp.is_autocast_available(self.device.type):
            raise UsageError(f"autocast is not available on {self.device.type} in this PyTorch")

        self.is_trev = any(layer.kind == "trevsnn" for layer in profile.layers)
        if self.is_trev and strategy not in ("bptt", "trevsnn"):
            raise UsageError(f"{strategy} does not apply to a T-RevSNN network (its columns carry state through "
                             "level states, not membrane potentials); use trevsnn (or bptt)")
        if strategy == "trevsnn" and not self.is_trev:
            raise UsageError("trevsnn needs a `trevsnn:` network in the profile's layers")
        if self.is_trev and self.autocast_dtype is not None:
            raise UsageError(f"a T-RevSNN network under {self.dtype_name} autocast is not measured by this package "
                             "(its function does not rerun the levels under the forward's autocast); use float32")

        torch.manual_seed(seed)
        if net is None:
            net = build(profile, step_mode="s" if strategy == "sltt" else "m", timesteps=self.timesteps)
        self.net = net.to(self.device)
        self.net.train()
        self.optimizer = optimizer_for(profile, self.net.parameters())
        self.scaler = torch.amp.GradScaler(self.device.type) if self.dtype is torch.float16 else None
        # Optimizer steps taken (a GradScaler skips the step when a gradient is inf/NaN).
        self.optimizer_steps = 0
        self.optimizer.register_step_post_hook(self._count_step)
        generator = torch.Generator().manual_seed(seed + 1)
        # Event frames (a per-timestep input) are a [T, B, ...] batch fed as it is; an image is repeated over T.
        self.per_timestep = profile.input_per_timestep
        shape = ((self.timesteps,) if self.per_timestep else ()) + (self.batch, *profile.input_shape)
        self.x = torch.rand(shape, generator=generator).to(self.device)
        self.labels = torch.randint(0, profile.classes, (self.batch,), generator=generator).to(self.device)
        self.tracker = LayerTracker(self.net)
        if strategy == "revsnn":
            # Reversible stages run RevSNN's custom autograd function (reversible.py); the rest as bptt.
            from .reversible import configure, stages
            if not stages(self.net):
                raise UsageError("revsnn needs a reversible stage (`reversible:` in the profile's layers)")
            if self.autocast_dtype is not None:
                raise UsageError(f"revsnn under {self.dtype_name} autocast: the couplings' adds and subtractions "
                                 "would run in half precision, so the inputs reconstructed in backward would not be "
                                 "the forward's (gradients off by far more than rounding); use float32")
            configure(self, "revsnn")
        if self.is_trev:
            # Plain autograd through the columns under bptt, T-RevSNN's autograd function under trevsnn.
            from .trevsnn import configure as configure_trev
            configure_trev(self, "trevsnn" if strategy == "trevsnn" else "autograd")
        self.neurons = self.net.neurons
        if strategy == "sltt":
            for _, module in self.neurons:
                module.register_forward_pre_hook(_detach_state)
        # Set by the saved-tensor recorder: called after each forward, before its backward.
        self.observer = None
        # Inputs of the checkpoint call being entered: [(layer path, tensor)], for attribution.
        self.checkpoint_args: Optional[list] = None
        self.loss_sequence_start: Optional[int] = None
        # checkpoint: the autocast dtype (None: autocast off) each recomputation ran under, in order.
        self.recompute_autocast: list = []

    # ------------------------------------------------------------------------------------------

    def _count_step(self, optimizer, args, kwargs) -> None:
        self.optimizer_steps += 1

    def autocast(self):
        """The autocast region a forward runs in (nothing for float32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _backward(self, loss: torch.Tensor) -> None:
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def warm_up(self) -> int:
        """Steps until the step is steady: one step, and under a float16 GradScaler more until a step's
        optimizer update was taken (not skipped for an inf/NaN gradient). Returns the steps run."""
        steps = 0
        while True:
            taken = self.optimizer_steps
            self.step()
            steps += 1
            if self.optimizer_steps > taken or self.scaler is None or steps >= MAX_WARM_UP_STEPS:
                return steps

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
                self._backward(loss)
                loss_value = float(loss.detach())
                del loss
        self._finish()
        return loss_value

    def forward(self, checkpointed: bool = True) -> torch.Tensor:
        """Forward over all timesteps (bptt, checkpoint) and the loss, under autocast for mixed precision."""
        with self.autocast():
            if self.strategy == "checkpoint":
                return self._forward_segments(checkpointed)
            tracker = self.tracker
            if self.is_trev:
                # The stem encodes the images once (no repeat over T); each column scores its top level.
                from .trevsnn import column_loss
                logits = self.net(self.x)
                self._mark_loss_start()
                with tracker.layer("loss"):
                    return column_loss(logits, self.labels)
            with tracker.layer("input"):
                x_seq = self.x if self.per_timestep else self.x.unsqueeze(0).repeat(self.timesteps, *([1] * self.x.dim()))
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
                with self.autocast():
                    out = self.net(self.x[t] if self.per_timestep else self.x)
                    self._mark_loss_start()
                    with tracker.layer("loss"):
                        loss = F.cross_entropy(out, self.labels) / self.timesteps
                    del out
                if self.observer is not None:
                    self.observer.forward_done(self, loss, group=t)
            with tracker.in_phase("backward", t):
                self._backward(loss)
                total += float(loss.detach())
                del loss
        return total

    def _forward_segments(self, checkpointed: bool) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        tracker = self.tracker
        k = self.segment
        with tracker.layer("input"):
            x_seq = self.x if self.per_timestep else self.x.unsqueeze(0).repeat(self.timesteps, *([1] * self.x.dim()))
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
            if tracker.phase == "recompute":
                # What autocast state the recomputation runs under (checkpoint restores the forward's).
                enabled = torch.is_autocast_enabled(self.device.type)
                self.recompute_autocast.append(
                    str(torch.get_autocast_dtype(self.device.type)).replace("torch.", "") if enabled else None)
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
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        with tracker.in_phase("reset"):
            functional.reset_net(self.net)

    # ------------------------------------------------------------------------------------------

    def gradients(self, checkpointed: bool = True) -> dict:
        """Parameter gradients of one forward and backward (no optimizer step), by parameter name.

        Under mixed precision the forward runs under autocast as in a step, the backward unscaled (a
        GradScaler's scale changes the gradients' rounding, not which function is differentiated)."""
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
                        seed: int = 0, dtype: Optional[str] = None) -> tuple:
    """(max |checkpoint grad - reference grad|, reference name) for the same weights and batch.

    The reference is bptt itself when checkpointing cannot change the function (no batch norm, or
    one segment); otherwise the same segmented forward run without checkpointing ("segmented").
    Under mixed precision segments of k < T timesteps always compare with "segmented": a layer run
    on [k*B] instead of [T*B] samples and per-segment half-precision weight gradients summed in
    float32 round differently from bptt (|diff| ~ 1e-4), while the recomputation must reproduce
    its own forward exactly.
    """
    ckpt = Trainer(profile, "checkpoint", batch, timesteps, segment, device, seed, dtype)
    got = ckpt.gradients(checkpointed=True)
    if (has_batchnorm(profile) or ckpt.autocast_dtype is not None) and segment < timesteps:
        ref_trainer = Trainer(profile, "checkpoint", batch, timesteps, segment, device, seed, dtype)
        expected = ref_trainer.gradients(checkpointed=False)
        name = "segmented"
    else:
        ref_trainer = Trainer(profile, "bptt", batch, timesteps, None, device, seed, dtype)
        expected = ref_trainer.gradients()
        name = "bptt"
    if got.keys() != expected.keys():
        raise AssertionError("checkpoint and reference runs have different parameters with gradients")
    diff = max(float((got[k] - expected[k]).abs().max()) for k in got) if got else 0.0
    return diff, name
