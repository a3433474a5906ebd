"""The ordered stream of allocations and frees of one training step, from PyTorch's profiler.

`torch.profiler.profile(activities=[CPU], profile_memory=True)` reports every allocation and free
of c10's CPU allocator (every tensor storage) with its address and size, nested in the op that
made it. The tree (`kineto_results.experimental_event_tree()`) gives each event:

  phase    the enclosing `snnmem.phase:<phase>[:t]` range (forward, backward, optimizer, reset), or
           "recompute" for a forward range of a layer that runs inside backward (checkpoint);
  layer    the enclosing `snnmem.layer:<path>` range in forward; in backward the layer whose
           forward op has the same autograd sequence number as the node being evaluated;
  op       in forward the outermost ATen op below the layer range (e.g. aten::conv2d), in
           backward the autograd node (e.g. ConvolutionBackward0); "python" for a free that
           happens between ops (a Python reference dropped);
  kernel   the innermost op around the event (e.g. aten::empty, aten::mul).

Frees of storages allocated before profiling started are not reported by PyTorch; a step here
allocates everything it frees (see strategies.py), so none are missing: the stream sums to the
change in live bytes over the step, which `measure` checks.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Optional

import torch

from .tracker import LAYER_PREFIX, PHASE_PREFIX

EVALUATE = "autograd::engine::evaluate_function: "


@dataclass
class Allocation:
    bytes: int
    address: int
    op: str
    kernel: str
    phase: str
    layer: Optional[str]
    timestep: Optional[int]
    time_ns: int
    thread: int

    def to_json(self) -> dict:
        return {"bytes": self.bytes, "address": self.address, "op": self.op, "kernel": self.kernel,
                "phase": self.phase, "layer": self.layer, "timestep": self.timestep}


@dataclass
class Stream:
    events: list = field(default_factory=list)

    @property
    def peak(self) -> tuple:
        """(max running sum, index of the event that reached it first); (0, -1) if never above 0."""
        running = 0
        best, where = 0, -1
        for index, event in enumerate(self.events):
            running += event.bytes
            if running > best:
                best, where = running, index
        return best, where

    @property
    def total(self) -> int:
        return sum(e.bytes for e in self.events)


def _walk(tree):
    """Yields (event, ancestors) depth-first."""
    stack = [(event, ()) for event in reversed(tree)]
    while stack:
        event, ancestors = stack.pop()
        yield event, ancestors
        chain = ancestors + (event,)
        for child in reversed(event.children):
            stack.append((child, chain))


def _is_allocation(event) -> bool:
    return type(event.extra_fields).__name__ == "_ExtraFields_Allocation"


def _is_op(event) -> bool:
    return type(event.extra_fields).__name__ == "_ExtraFields_TorchOp"


def _sequence(event) -> int:
    try:
        return event.extra_fields.sequence_number
    except AttributeError:
        return -1


def parse(prof, device_type: str = "cpu") -> Stream:
    tree = prof.profiler.kineto_results.experimental_event_tree()
    walked = list(_walk(tree))

    # Phase ranges (main thread) for events on other threads, and forward op -> layer by sequence nr.
    phase_ranges = []
    layer_of_sequence: dict = {}
    for event, ancestors in walked:
        if event.name.startswith(PHASE_PREFIX):
            phase_ranges.append((event.start_time_ns, event.end_time_ns, event.name[len(PHASE_PREFIX):]))
        elif _is_op(event) and _sequence(event) >= 0 and not event.name.startswith(EVALUATE):
            layer = None
            for a in reversed(ancestors):
                if a.name.startswith(LAYER_PREFIX):
                    layer = a.name[len(LAYER_PREFIX):]
                    break
                if a.name.startswith(EVALUATE):
                    break
            if layer is not None:
                # Ops that create no node see the same number as the next one that does: the last wins.
                layer_of_sequence[_sequence(event)] = layer
    phase_ranges.sort()

    events = []
    for order, (event, ancestors) in enumerate(walked):
        if not _is_allocation(event):
            continue
        fields = event.extra_fields
        if fields.device.type != device_type:
            continue
        phase_text = None
        for a in reversed(ancestors):
            if a.name.startswith(PHASE_PREFIX):
                phase_text = a.name[len(PHASE_PREFIX):]
                break
        if phase_text is None:
            for start, end, text in phase_ranges:
                if start <= event.start_time_ns <= end:
                    phase_text = text
        phase, timestep = _split_phase(phase_text)
        # The innermost snnmem range or autograd node evaluation decides layer and op.
        boundary = -1
        for i in range(len(ancestors) - 1, -1, -1):
            name = ancestors[i].name
            if name.startswith(LAYER_PREFIX) or name.startswith(EVALUATE) or name.startswith(PHASE_PREFIX):
                boundary = i
                break
        layer = None
        op = None
        if boundary >= 0 and ancestors[boundary].name.startswith(EVALUATE):
            node = ancestors[boundary]
            op = node.name[len(EVALUATE):]
            layer = layer_of_sequence.get(_sequence(node))
        else:
            if boundary >= 0 and ancestors[boundary].name.startswith(LAYER_PREFIX):
                layer = ancestors[boundary].name[len(LAYER_PREFIX):]
                if phase == "backward":
                    phase = "recompute"
            for a in ancestors[boundary + 1:]:
                if _is_op(a):
                    op = a.name
                    break
        kernel = next((a.name for a in reversed(ancestors[boundary + 1:]) if _is_op(a)), None)
        events.append((event.start_time_ns, order, Allocation(
            bytes=int(fields.alloc_size), address=int(fields.ptr), op=op or "python", kernel=kernel or op or "python",
            phase=phase or "unknown",
            layer=layer, timestep=timestep, time_ns=event.start_time_ns, thread=event.start_tid)))
    events.sort(key=lambda item: (item[0], item[1]))
    return Stream([item[2] for item in events])


def _split_phase(text: Optional[str]) -> tuple:
    if text is None:
        return None, None
    if ":" in text:
        phase, t = text.split(":", 1)
        return phase, int(t)
    return text, None


_NOISE = ("USDT:", "gpuGetDeviceCount failed")


@contextlib.contextmanager
def _quiet_profiler_log():
    """Kineto writes start/stop notes (and, on a CUDA build without a GPU, an error about it) to
    file descriptor 2; keep them out of the output and pass everything else on."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if not any(noise in line for noise in _NOISE):
                    print(line, file=sys.stderr)


def record(step, device_type: str = "cpu") -> Stream:
    """Runs `step()` under the profiler and returns its allocation stream."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if device_type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with _quiet_profiler_log():
        with profile(activities=activities, profile_memory=True, record_shapes=False, with_stack=False) as prof:
            step()
        stream = parse(prof, device_type)
    return stream
