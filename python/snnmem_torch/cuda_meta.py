"""What PyTorch eager autograd + SpikingJelly 2.0 multi-step modules keep for backward on CUDA,
measured without a GPU.

The CUDA runtime is reproduced with ``FakeTensorMode`` on device ``"cuda"``: tensors carry the CUDA
device and CUDA dispatch keys (AutogradCUDA, AutocastCUDA) but no storage. Everything above the
kernels is the real code: nn.Module and SpikingJelly forwards, PyTorch's C++ composite ops and
their backend choice (``_batch_norm_impl_index`` picks ``cudnn_batch_norm`` because the input
``is_cuda()`` and the wheel was built with cuDNN), the autograd nodes and what they save, autocast's
casts and weight cache, SpikingJelly's registered autograd for its ``sj_lif::forward`` /
``sj_if::forward`` ops. Only the kernels are replaced by PyTorch's own fake/meta kernels (and, for
SpikingJelly's ops, by the ``register_fake`` functions SpikingJelly ships). ``provider_outputs``
checks that replacement against SpikingJelly's Triton provider: it runs the provider's real
``_forward_impl``/``_backward_impl`` and stands in only for the kernel launch.

Nothing on a GPU is queried: the few device probes that need a driver (device name for a log line,
compute capability for the provider choice, AMP availability) are stubbed with an H200's answers.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional
from unittest import mock

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode

H200_CAPABILITY = (9, 0)


# ---------------------------------------------------------------------------------------------
# The fake CUDA device


@contextlib.contextmanager
def fake_cuda():
    """Fake CUDA tensors; factory calls without a device (module construction) land on cuda."""
    stubs = (
        mock.patch.object(torch.cuda, "get_device_name", lambda *a, **k: "NVIDIA H200 (fake)"),
        mock.patch.object(torch.cuda, "get_device_capability", lambda *a, **k: H200_CAPABILITY),
        mock.patch.object(torch.cuda, "current_device", lambda: 0),
    )
    with contextlib.ExitStack() as stack:
        for stub in stubs:
            stack.enter_context(stub)
        stack.enter_context(FakeTensorMode(allow_non_fake_inputs=False))
        stack.enter_context(torch.device("cuda"))
        yield


def fake_cuda_autocast(dtype: torch.dtype) -> torch.autocast:
    """``torch.autocast("cuda", dtype)`` with only its GPU-availability probes answered (H200: CUDA
    present, bf16 supported); entering and leaving it is torch's own code."""
    with mock.patch("torch.cuda.amp.common.amp_definitely_not_available", lambda: False), \
            mock.patch.object(torch.cuda, "is_bf16_supported", lambda *a, **k: True):
        region = torch.autocast("cuda", dtype=dtype)
    if not region._enabled:
        raise RuntimeError("autocast stayed disabled")
    return region


@contextlib.contextmanager
def autocast_off():
    """Autocast disabled, as for a backward called after the autocast region exited (the engine runs
    every node under the autocast state of the ``backward()`` call). Inside an enclosing region this
    nests: the region's weight cache is not cleared on leaving."""
    with mock.patch("torch.cuda.amp.common.amp_definitely_not_available", lambda: False):
        region = torch.autocast("cuda", enabled=False)
    with region, torch.autocast("cpu", enabled=False):
        yield


# ---------------------------------------------------------------------------------------------
# Records


def _key(t: torch.Tensor) -> StorageWeakRef:
    return StorageWeakRef(t.untyped_storage())


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


@dataclass(frozen=True)
class Alloc:
    """A storage an op created: ``op`` made it, ``nbytes`` is the storage size."""
    op: str
    shape: tuple
    dtype: torch.dtype
    nbytes: int
    alive: bool = False  # forward: still referenced after the layer (output, saved, module state)


@dataclass(frozen=True)
class Saved:
    """One tensor an autograd node saved. ``origin`` says whose storage it is: ``input:<name>``,
    ``parameter:<name>``, ``buffer:<name>``, ``new:<op>`` (allocated by this layer's forward)."""
    node: str
    slot: str
    shape: tuple
    dtype: torch.dtype
    nbytes: int
    origin: str
    # Reachable only from module state (the neuron's final v), not from the output: backward from
    # the loss never visits the node, so it stays saved until the module drops the state
    # (functional.reset_net).
    state_only: bool = False

    @property
    def is_new(self) -> bool:
        return self.origin.startswith("new:")


@dataclass
class Trace:
    saved: list[Saved]
    forward: list[Alloc]
    backward: list[Alloc]
    ops: list[str]  # every op dispatched in forward (views included), in order
    backward_ops: list[str]
    output: tuple  # (shape, dtype) of the layer output
    packed: int  # number of tensors saved_tensors_hooks saw packed
    grads: dict = field(default_factory=dict)  # leaf name -> (shape, dtype) of its gradient

    def saved_new_bytes(self) -> int:
        seen, total = set(), 0
        for s in self.saved:
            if s.is_new and (s.origin, s.shape) not in seen:
                seen.add((s.origin, s.shape))
                total += s.nbytes
        return total

    def transients(self) -> list[Alloc]:
        return [a for a in self.forward if not a.alive]


class _Recorder(TorchDispatchMode):
    """Logs each op and every storage first produced by an op."""

    def __init__(self, known: dict):
        super().__init__()
        self.known = known  # StorageWeakRef -> origin label
        self.allocs: list[tuple[StorageWeakRef, Alloc]] = []
        self.ops: list[str] = []
        self.keep: list = []  # storages held: a freed storage's address must not be reused mid-trace

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.prim.device.default:
            return out
        name = str(func.overloadpacket.__name__) if hasattr(func, "overloadpacket") else str(func)
        qualified = f"{func.namespace}.{name}" if hasattr(func, "namespace") else name
        self.ops.append(qualified)
        for t in _tensors(out):
            k = _key(t)
            if k not in self.known:
                self.known[k] = f"new:{qualified}"
                self.keep.append(t.untyped_storage())
                self.allocs.append((k, Alloc(qualified, tuple(t.shape), t.dtype, t.untyped_storage().nbytes())))
        return out


def _tensors(value) -> Iterable[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _tensors(v)


def _node_saved(node) -> list[tuple[str, torch.Tensor]]:
    if isinstance(node, torch.autograd.function.BackwardCFunction):
        return [(f"saved_tensors[{i}]", t) for i, t in enumerate(node.saved_tensors)]
    found = []
    for attr in sorted(dir(node)):
        if not attr.startswith("_saved_"):
            continue
        value = getattr(node, attr)
        for i, t in enumerate(_tensors(value)):
            found.append((attr[len("_saved_"):] + ("" if isinstance(value, torch.Tensor) else f"[{i}]"), t))
    return found


def _graph(root_nodes, stop: set) -> list:
    """Nodes reachable from the roots (not AccumulateGrad, not in ``stop``), roots first."""
    order, seen, stack = [], set(), [n for n in root_nodes if n is not None]
    while stack:
        n = stack.pop()
        if n in seen or n in stop or type(n).__name__ == "AccumulateGrad":
            continue
        seen.add(n)
        order.append(n)
        stack.extend(nxt for nxt, _ in n.next_functions if nxt is not None)
    return order


def _run_backward(roots: list[tuple[torch.Tensor, torch.Tensor]], stop: set, leaves: dict) -> dict:
    """Calls each node's backward in dependency order, as the engine does (the engine itself
    needs a CUDA driver to run on CUDA tensors). Returns the gradients reaching ``leaves``."""
    nodes = _graph([t.grad_fn for t, _ in roots], stop)
    inside = set(nodes)
    deps = defaultdict(int)
    for n in nodes:
        for nxt, _ in n.next_functions:
            if nxt in inside:
                deps[nxt] += 1
    buffers = {n: [None] * len(n._input_metadata) for n in nodes}
    for t, g in roots:
        buffers[t.grad_fn][t.output_nr] = g
    leaf_nodes = {}
    for name, t in leaves.items():
        if t.requires_grad and t.grad_fn is None:
            leaf_nodes[name] = t
    grads = {}
    ready = [n for n in nodes if deps[n] == 0]
    with torch.no_grad():
        while ready:
            n = ready.pop()
            args = buffers.pop(n)
            results = n.apply(*args) if isinstance(n, torch.autograd.function.BackwardCFunction) else n(*args)
            if isinstance(results, torch.Tensor):
                results = (results,)
            for (nxt, nr), g in zip(n.next_functions, results):
                if nxt is None or g is None:
                    continue
                # the engine's validate_outputs: reduce a broadcast gradient, cast to the input dtype
                meta = nxt._input_metadata[nr]
                if tuple(g.shape) != tuple(meta.shape):
                    g = g.sum_to_size(meta.shape)
                if g.dtype != meta.dtype:
                    g = g.to(meta.dtype)
                if type(nxt).__name__ == "AccumulateGrad":
                    for name, leaf in leaf_nodes.items():
                        if nxt.variable is leaf:
                            grads[name] = g if name not in grads else grads[name] + g
                    continue
                if nxt not in inside:
                    continue
                slot = buffers[nxt]
                slot[nr] = g if slot[nr] is None else slot[nr] + g
                deps[nxt] -= 1
                if deps[nxt] == 0:
                    ready.append(nxt)
    return grads


def trace(fn: Callable[[], torch.Tensor], inputs: dict, modules: dict | None = None,
          backward: bool = True, state: Callable[[], Iterable[torch.Tensor]] | None = None) -> Trace:
    """Runs ``fn`` (the layer's forward on fake CUDA tensors) and records what it saved and
    allocated; then runs its backward with a gradient of the output's shape and records that
    (with autocast off: training calls backward outside the autocast region).

    ``inputs``: name -> tensor the layer receives. ``modules``: name -> module whose parameters
    and buffers are labelled. ``state``: tensors the module holds after forward (neuron v)."""
    known: dict = {}
    for name, t in inputs.items():
        known[_key(t)] = f"input:{name}"
    for mname, m in (modules or {}).items():
        for pname, p in m.named_parameters():
            known[_key(p)] = f"parameter:{mname}.{pname}"
        for bname, b in m.named_buffers():
            known[_key(b)] = f"buffer:{mname}.{bname}"
    stop = {t.grad_fn for t in inputs.values() if t.grad_fn is not None}
    packed = []

    def pack(t):
        packed.append(t)
        return t

    recorder = _Recorder(known)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), recorder:
        out = fn()
    saved = []
    alive = {_key(out)}
    held = list(state() if state else ())
    for t in held:
        alive.add(_key(t))
    from_output = _graph([out.grad_fn], stop)
    reached = set(from_output)
    from_state = [n for n in _graph([t.grad_fn for t in held], stop) if n not in reached]
    for node, state_only in [(n, False) for n in from_output] + [(n, True) for n in from_state]:
        for slot, t in _node_saved(node):
            if t.device.type == "cpu" and t.dim() == 0:
                origin = "cpu-scalar"  # a Python number autograd wrapped (x / tau): host memory
            else:
                origin = known.get(_key(t), "unknown")
                alive.add(_key(t))
            saved.append(Saved(type(node).__name__, slot, tuple(t.shape), t.dtype, _nbytes(t), origin, state_only))
    forward = [Alloc(a.op, a.shape, a.dtype, a.nbytes, k in alive) for k, a in recorder.allocs]
    back, back_ops, grads = [], [], {}
    if backward and out.requires_grad:
        grad_out = torch.empty_like(out)
        known[_key(grad_out)] = "grad_output"
        back_rec = _Recorder(known)
        with autocast_off(), back_rec:  # backward is called outside autocast
            grads = _run_backward([(out, grad_out)], stop, dict(inputs))
        back = [a for _, a in back_rec.allocs]
        back_ops = back_rec.ops
    return Trace(saved, forward, back, recorder.ops, back_ops, (tuple(out.shape), out.dtype), len(packed),
                 {k: (tuple(v.shape), v.dtype) for k, v in grads.items()})


# ---------------------------------------------------------------------------------------------
# SpikingJelly neurons


def make_neuron(kind: str, v_reset: Optional[float] = 0.0, detach_reset: bool = False,
                decay_input: bool = True, store_v_seq: bool = False):
    from spikingjelly.activation_based import neuron
    if kind == "lif":
        return neuron.LIFNode(tau=2.0, decay_input=decay_input, v_reset=v_reset, detach_reset=detach_reset,
                              step_mode="m", store_v_seq=store_v_seq)
    if kind == "if":
        return neuron.IFNode(v_reset=v_reset, detach_reset=detach_reset, step_mode="m", store_v_seq=store_v_seq)
    raise ValueError(kind)


def neuron_trace(kind: str = "lif", shape=(4, 2, 8, 8, 8), dtype=torch.float32, **options) -> tuple:
    """A multi-step LIF/IF on fake CUDA; returns (Trace, module). The input stands for the
    previous layer's output (a tensor requiring grad)."""
    node = make_neuron(kind, **options)
    x = torch.empty(shape, dtype=dtype, requires_grad=True)

    def held():
        held = [t for t in node._memories.values() if isinstance(t, torch.Tensor)]
        if isinstance(getattr(node, "v_seq", None), torch.Tensor):
            held.append(node.v_seq)
        return held

    return trace(lambda: node(x), {"x_seq": x}, {}, state=held), node


def _provider(kind: str):
    if kind == "lif":
        from spikingjelly._ops import lif as ops
    else:
        from spikingjelly._ops import if_ as ops
    return ops


def eager_provider(kind: str = "lif") -> dict:
    """Which implementation SpikingJelly's eager CUDA selection picks on an H200 with this
    installation: priority cuda (native extension) > triton > torch."""
    ops = _provider(kind)
    with mock.patch.object(torch.cuda, "device", lambda *a, **k: contextlib.nullcontext()), \
            mock.patch.object(torch.cuda, "get_device_capability", lambda *a, **k: H200_CAPABILITY), \
            mock.patch.object(torch.cuda, "get_device_name", lambda *a, **k: "NVIDIA H200 (fake)"):
        chosen = ops._selection._select(0)
    native_built = importlib.util.find_spec(f"{ops.__name__}._C") is not None
    return {"implementation": chosen.name, "unavailable": dict(chosen.unavailable), "native_built": native_built}


class _Launch:
    """Stands in for ``triton.JITFunction[grid](...)``: records the tensors passed, runs nothing."""
    calls: list = []

    def __init__(self, kernel):
        self.name = getattr(getattr(kernel, "fn", kernel), "__name__", str(kernel))

    def __getitem__(self, grid):
        def launch(*args, **kwargs):
            _Launch.calls.append((self.name, [(tuple(t.shape), t.dtype, tuple(t.stride()))
                                              for t in args if isinstance(t, torch.Tensor)]))
        return launch


def provider_outputs(kind: str = "lif", shape=(4, 2, 8, 8, 8), dtype=torch.float32, v_reset=0.0,
                     detach_reset=False, store_v_seq=False) -> dict:
    """Runs the Triton provider's real ``_forward_impl`` and ``_backward_impl`` on fake CUDA
    tensors, with the kernel launch (its documented ``_kernel_wrapper`` hook) replaced by a
    recorder, and returns what they allocate and hand to the kernels. Call inside ``fake_cuda()``."""
    from spikingjelly._ops.lif import triton as lif_triton
    from spikingjelly._ops.if_ import triton as if_triton
    _Launch.calls = []
    x = torch.empty(shape, dtype=dtype)
    v = torch.zeros(shape[1:], dtype=torch.float32)
    with mock.patch.object(torch.cuda, "device", lambda *a, **k: contextlib.nullcontext()):
        if kind == "lif":
            fwd = lif_triton._forward_impl(x, v, 2.0, True, 1.0, v_reset, detach_reset, 4.0, store_v_seq, 0,
                                           _kernel_wrapper=_Launch)
        else:
            fwd = if_triton._forward_impl(x, v, 1.0, v_reset, detach_reset, 4.0, store_v_seq, 0,
                                          _kernel_wrapper=_Launch)
        h = fwd[2]
        gs = torch.empty_like(fwd[0])
        gv = torch.zeros_like(h if store_v_seq else h[0])
        if kind == "lif":
            bwd = lif_triton._backward_impl(gs, gv, h, 2.0, True, 1.0, v_reset, detach_reset, 4.0, store_v_seq, 0,
                                            _kernel_wrapper=_Launch)
        else:
            bwd = if_triton._backward_impl(gs, gv, h, 1.0, v_reset, detach_reset, 4.0, store_v_seq, 0,
                                           _kernel_wrapper=_Launch)
    describe = lambda ts: [(tuple(t.shape), t.dtype, tuple(t.stride())) for t in ts]
    return {"forward": describe(fwd), "backward": describe(bwd), "launches": list(_Launch.calls)}


def fake_outputs(kind: str = "lif", shape=(4, 2, 8, 8, 8), dtype=torch.float32, v_reset=0.0,
                 detach_reset=False, store_v_seq=False) -> dict:
    """The same calls through the registered ops (``torch.ops.sj_lif.forward``/``backward``)
    below autograd, which on fake CUDA run SpikingJelly's registered fake kernels."""
    ns = torch.ops.sj_lif if kind == "lif" else torch.ops.sj_if
    x = torch.empty(shape, dtype=dtype)
    v = torch.zeros(shape[1:], dtype=torch.float32)
    lif_params = (2.0, True) if kind == "lif" else ()
    with torch.no_grad():
        fwd = ns.forward.default(x, v, *lif_params, 1.0, v_reset, detach_reset, 4.0, store_v_seq, 0)
        h = fwd[2]
        gs = torch.empty_like(fwd[0])
        gv = torch.zeros_like(h if store_v_seq else h[0])
        bwd = ns.backward.default(gs, gv, h, *lif_params, 1.0, v_reset, detach_reset, 4.0, store_v_seq, 0)
    describe = lambda ts: [(tuple(t.shape), t.dtype, tuple(t.stride())) for t in ts]
    return {"forward": describe(fwd), "backward": describe(bwd)}


def dispatch_keys(op: str = "sj_lif::forward") -> dict:
    """Which dispatch keys the op has kernels for: CUDA autograd comes from the ``Autograd``
    alias (``register_autograd``), the CPU has its own ``AutogradCPU`` (the Python loop)."""
    has = torch._C._dispatch_has_kernel_for_dispatch_key
    return {k: has(op, k) for k in ("CUDA", "CPU", "Meta", "AutogradCPU", "AutogradCUDA", "Autograd")}


# ---------------------------------------------------------------------------------------------
# The other layers, multi-step as SpikingJelly runs them ([T, B, ...] flattened to [T*B, ...])


def layer_traces(T=4, B=2, C=8, H=8, W=8, classes=10, dtype=torch.float32,
                 autocast: Optional[torch.dtype] = None) -> dict:
    """Traces of each layer kind on fake CUDA. Call inside ``fake_cuda()``."""
    from spikingjelly.activation_based import layer
    import torch.nn.functional as F

    region = (lambda: fake_cuda_autocast(autocast)) if autocast else contextlib.nullcontext
    out = {}

    def leaf(*shape, dt=dtype):
        return torch.empty(shape, dtype=dt, requires_grad=True)

    conv = layer.Conv2d(C, C, 3, padding=1, bias=False, step_mode="m")
    x = leaf(T, B, C, H, W)
    with region():
        out["conv"] = trace(lambda: conv(x), {"x_seq": x}, {"conv": conv})
    conv_b = layer.Conv2d(C, C, 3, padding=1, bias=True, step_mode="m")
    x = leaf(T, B, C, H, W)
    with region():
        out["conv_bias"] = trace(lambda: conv_b(x), {"x_seq": x}, {"conv": conv_b})
    bn = layer.BatchNorm2d(C, step_mode="m")
    x = leaf(T, B, C, H, W, dt=(autocast or dtype))
    with region():
        out["batch_norm"] = trace(lambda: bn(x), {"x_seq": x}, {"bn": bn})
    pool = layer.MaxPool2d(2, 2, step_mode="m")
    x = leaf(T, B, C, H, W)
    with region():
        out["max_pool"] = trace(lambda: pool(x), {"x_seq": x})
    avg = layer.AvgPool2d(2, 2, step_mode="m")
    x = leaf(T, B, C, H, W)
    with region():
        out["avg_pool"] = trace(lambda: avg(x), {"x_seq": x})
    gap = layer.AdaptiveAvgPool2d((1, 1), step_mode="m")
    x = leaf(T, B, C, H, W)
    with region():
        out["adaptive_avg_pool_1x1"] = trace(lambda: gap(x), {"x_seq": x})
    flat = layer.Flatten(step_mode="m")
    x = leaf(T, B, C, H, W)
    with region():
        out["flatten"] = trace(lambda: flat(x), {"x_seq": x})
    fc = layer.Linear(C * H * W, classes, step_mode="m")
    x = leaf(T, B, C * H * W)
    with region():
        out["linear"] = trace(lambda: fc(x), {"x_seq": x}, {"fc": fc})
    x = leaf(T, B, classes)
    with region():
        out["mean_over_T"] = trace(lambda: x.mean(0), {"y_seq": x})
    logits = leaf(B, classes, dt=(autocast or dtype))
    target = torch.zeros(B, dtype=torch.int64)
    with region():
        out["cross_entropy"] = trace(lambda: F.cross_entropy(logits, target), {"logits": logits, "target": target})
    return out


def autocast_weight_casts(dtype=torch.float16, uses: int = 2) -> list:
    """Applies one conv ``uses`` times inside one autocast region; returns the ``_to_copy`` casts of
    the weight that autocast performed (its cache makes it one per region)."""
    from spikingjelly.activation_based import layer
    conv = layer.Conv2d(8, 8, 3, padding=1, bias=False, step_mode="m")
    x = torch.empty(4, 2, 8, 8, 8, dtype=dtype)
    known = {_key(conv.weight): "parameter:conv.weight", _key(x): "input"}
    rec = _Recorder(known)
    with fake_cuda_autocast(dtype), rec:
        for _ in range(uses):
            conv(x)
    return [a for _, a in rec.allocs if a.op == "aten._to_copy" and a.shape == tuple(conv.weight.shape)]


def network_traces(profile_path: str, T: int = 2, B: int = 2, autocast: Optional[torch.dtype] = None) -> list:
    """A profile's network as bptt runs it (multi-step), layer by layer on fake CUDA inside one
    autocast region (none for float32): each top-level layer gets a fresh input of the shape and
    dtype its predecessor returned (the first one the float32 x_seq, needing no grad), then the
    loss (mean over T, cross-entropy). Returns [(layer path or "loss", Trace)]. Call outside
    ``fake_cuda()``; the weights are the module's own float32 parameters."""
    import torch.nn.functional as F
    from .build import build
    from .profile import load

    profile = load(profile_path)
    out = []
    with fake_cuda():
        net = build(profile, "m")
        net.train()
        paths = {id(m): path for path, m in net.layers.items() if m is not None}
        region = fake_cuda_autocast(autocast) if autocast else contextlib.nullcontext()
        x = torch.empty((T, B, *profile.input_shape))
        with region:
            for module in net.body:
                path = paths.get(id(module), type(module).__name__)
                inp = x

                def held(module=module):
                    memories = getattr(module, "_memories", {})
                    return [t for t in memories.values() if isinstance(t, torch.Tensor)]

                tr = trace(lambda: module(inp), {"input": inp}, {path: module}, state=held)
                out.append((path, tr))
                shape, dtype = tr.output
                x = torch.empty(shape, dtype=dtype, requires_grad=True)
            labels = torch.zeros(B, dtype=torch.int64)
            logits = x
            out.append(("loss", trace(lambda: F.cross_entropy(logits.mean(0), labels),
                                      {"logits_seq": logits, "target": labels})))
    return out


# ---------------------------------------------------------------------------------------------
# The same traces on a real GPU (for a session that has one)


def signature(tr: Trace) -> dict:
    """What must agree between the fake-CUDA trace and a real-GPU trace. cuDNN sizes the batch-norm
    reserve at run time (the fake kernel says 0); ``gpu_check`` reports it apart."""
    def shape(t) -> object:
        return "reserve" if t.dtype == torch.uint8 else t.shape
    return {
        "saved": sorted((s.node, s.slot, shape(s), str(s.dtype), s.origin, s.state_only) for s in tr.saved),
        "forward": [(a.op, shape(a), str(a.dtype), a.alive) for a in tr.forward],
        "backward": sorted((str(shape(a)), str(a.dtype)) for a in tr.backward),
        "output": (tr.output[0], str(tr.output[1])),
    }


NEURON_CASES = {
    "lif_hard": ("lif", {}), "lif_soft": ("lif", {"v_reset": None}),
    "lif_detach_reset": ("lif", {"detach_reset": True}), "if_hard": ("if", {}),
    "lif_store_v_seq": ("lif", {"store_v_seq": True}),
}


def _all_signatures(shape, real: bool) -> dict:
    ctx = torch.device("cuda") if real else fake_cuda()
    out = {}
    with ctx:
        for name, (kind, opts) in NEURON_CASES.items():
            out[name] = signature(neuron_trace(kind, shape, **opts)[0])
        for dt in (torch.float16, torch.bfloat16):
            with fake_cuda_autocast(dt):
                out[f"lif_autocast_{dt}"] = signature(neuron_trace("lif", shape, dtype=dt)[0])
        for name, tr in layer_traces(*shape).items():
            out[name] = signature(tr)
        for dt in (torch.float16, torch.bfloat16):
            for name, tr in layer_traces(*shape, autocast=dt).items():
                out[f"{name}_autocast_{dt}"] = signature(tr)
    return out


def gpu_check(shape=(4, 2, 8, 8, 8)) -> dict:
    """On a real CUDA device: the fake traces against real ones, and the numbers the fake device
    cannot give (cuDNN's batch-norm reserve, cuBLAS workspaces, the context outside the allocator)."""
    from spikingjelly.activation_based import functional
    res = {"device": torch.cuda.get_device_name(0), "capability": torch.cuda.get_device_capability(0),
           "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}
    res["neuron_implementation"] = {k: functional.neuron_implementation(k, torch.device("cuda"))
                                    for k in ("lif", "if")}
    real, fake = _all_signatures(shape, True), _all_signatures(shape, False)
    res["mismatches"] = {k: {"real": real[k], "fake": fake[k]} for k in real if real[k] != fake[k]}
    reserve = {}
    for label, dt, fmt in (("nchw_f32", torch.float32, torch.contiguous_format),
                           ("nchw_f16", torch.float16, torch.contiguous_format),
                           ("nhwc_f32", torch.float32, torch.channels_last)):
        for n, c, hw in ((8, 64, 32), (256, 128, 16)):
            x = torch.empty(n, c, hw, hw, device="cuda", dtype=dt).contiguous(memory_format=fmt)
            reserve[f"{label}_{n}x{c}x{hw}x{hw}"] = torch._C._get_cudnn_batch_norm_reserve_space_size(x, True)
    res["bn_reserve_bytes"] = reserve
    torch.cuda.synchronize()
    torch._C._cuda_clearCublasWorkspaces()
    a = torch.randn(64, 64, device="cuda", requires_grad=True)
    b = torch.randn(64, 64, device="cuda", requires_grad=True)
    before = torch.cuda.memory_allocated()
    y = a @ b
    after_fwd = torch.cuda.memory_allocated() - y.untyped_storage().nbytes()
    y.sum().backward()
    torch.cuda.synchronize()
    grads = a.grad.untyped_storage().nbytes() + b.grad.untyped_storage().nbytes()
    res["cublas_workspace_forward_bytes"] = after_fwd - before
    res["cublas_workspace_after_backward_bytes"] = torch.cuda.memory_allocated() - y.untyped_storage().nbytes() - grads - before
    free, total = torch.cuda.mem_get_info()
    res["outside_allocator_bytes"] = (total - free) - torch.cuda.memory_reserved()
    return res


# ---------------------------------------------------------------------------------------------


def _fmt(shape) -> str:
    return "[" + ",".join(str(s) for s in shape) + "]"


def report(T=4, B=2, C=8, H=8, W=8) -> str:
    """A plain-text dump of every trace (for the notes)."""
    lines = []
    with fake_cuda():
        lines.append(f"eager provider: {eager_provider('lif')}")
        for kind, opts in (("lif", {}), ("lif", {"v_reset": None}), ("lif", {"detach_reset": True}),
                           ("if", {}), ("lif", {"store_v_seq": True})):
            tr, node = neuron_trace(kind, (T, B, C, H, W), **opts)
            lines.append(f"--- {kind} {opts}")
            lines += _dump(tr)
        for dt in (torch.float16, torch.bfloat16):
            with fake_cuda_autocast(dt):
                tr, _ = neuron_trace("lif", (T, B, C, H, W), dtype=dt)
            lines.append(f"--- lif under autocast {dt} (input {dt})")
            lines += _dump(tr, limit=12)
        for name, tr in layer_traces(T, B, C, H, W).items():
            lines.append(f"--- {name}")
            lines += _dump(tr)
        for dt in (torch.float16, torch.bfloat16):
            for name, tr in layer_traces(T, B, C, H, W, autocast=dt).items():
                lines.append(f"--- {name} autocast {dt}")
                lines += _dump(tr)
    return "\n".join(lines)


def _dump(tr: Trace, limit: int = 40) -> list:
    lines = [f"  output {_fmt(tr.output[0])} {tr.output[1]}; packed {tr.packed}"]
    for s in tr.saved[:limit]:
        lines.append(f"  saved {s.node}.{s.slot} {_fmt(s.shape)} {s.dtype} {s.nbytes}B {s.origin}")
    if len(tr.saved) > limit:
        lines.append(f"  ... {len(tr.saved) - limit} more saved")
    for a in tr.forward[:limit]:
        lines.append(f"  fwd-alloc {a.op} {_fmt(a.shape)} {a.dtype} {a.nbytes}B {'alive' if a.alive else 'transient'}")
    for a in tr.backward[:limit]:
        lines.append(f"  bwd-alloc {a.op} {_fmt(a.shape)} {a.dtype} {a.nbytes}B")
    lines.append(f"  ops {tr.ops[:limit]}")
    lines.append(f"  grads {tr.grads}")
    return lines


if __name__ == "__main__":
    import json
    import sys
    if "--gpu" in sys.argv:
        print(json.dumps(gpu_check(), indent=1, default=str))
    else:
        print(report())
