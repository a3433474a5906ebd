"""Which profile layer is running: forward pre/post hooks keep a stack of layer paths.

The same hooks can open a profiler range per layer (`snnmem.layer:<path>`) so that allocation
events carry their layer, and a range per phase (`snnmem.phase:<phase>[:t]`). The input repeat
runs as layer "input" and the loss (mean over T, cross-entropy) as layer "loss".
"""

from __future__ import annotations

import contextlib
from typing import Optional

import torch

LAYER_PREFIX = "snnmem.layer:"
PHASE_PREFIX = "snnmem.phase:"


class _Range:
    """A profiler range opened and closed by hand (what `record_function` does in a `with`)."""

    def __init__(self, name: str):
        self.handle = torch.autograd.profiler.record_function(name)
        self.handle.__enter__()

    def close(self) -> None:
        self.handle.__exit__(None, None, None)


class LayerTracker:
    def __init__(self, network, ranges: bool = False):
        self.network = network
        self.ranges = ranges
        self.stack: list = []
        self._open: list = []
        self._handles = []
        self.phase: Optional[str] = None
        self._phase_range: Optional[_Range] = None
        for path, module in network.layers.items():
            self._handles.append(module.register_forward_pre_hook(self._pre(path)))
            self._handles.append(module.register_forward_hook(self._post(path)))

    # ------------------------------------------------------------------------------------------

    def _pre(self, path: str):
        def hook(module, args):
            self.push(path)
        return hook

    def _post(self, path: str):
        def hook(module, args, output):
            self.pop(path)
        return hook

    def push(self, path: str) -> None:
        self.stack.append(path)
        if self.ranges:
            self._open.append(_Range(LAYER_PREFIX + path))

    def pop(self, path: str) -> None:
        if not self.stack or self.stack[-1] != path:
            raise RuntimeError(f"layer stack out of order: leaving {path} with {self.stack}")
        self.stack.pop()
        if self.ranges:
            self._open.pop().close()

    @property
    def depth(self) -> int:
        return len(self.stack)

    def unwind_to(self, depth: int) -> None:
        """Closes layers a forward left open (checkpoint's early stop ends a recomputation by raising)."""
        while len(self.stack) > depth:
            self.stack.pop()
            if self.ranges:
                self._open.pop().close()

    @property
    def current(self) -> Optional[str]:
        return self.stack[-1] if self.stack else None

    @contextlib.contextmanager
    def layer(self, path: str):
        depth = self.depth
        self.push(path)
        try:
            yield
        finally:
            self.unwind_to(depth)

    @contextlib.contextmanager
    def in_phase(self, phase: str, timestep: Optional[int] = None):
        previous = self.phase
        self.phase = phase
        rng = _Range(PHASE_PREFIX + phase + ("" if timestep is None else f":{timestep}")) if self.ranges else None
        try:
            yield
        finally:
            if rng is not None:
                rng.close()
            self.phase = previous

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
