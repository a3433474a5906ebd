"""Exports a profile from a PyTorch + SpikingJelly module: `export_profile(model, example_input, ...)`
and `snnmem-torch export MODULE:FACTORY ...`.

The module is traced with torch.fx on a copy set to multi-step mode (SpikingJelly's
`functional.set_step_mode(net, 'm')`, tensors [T, B, ...]), which is the run snnmem plans: its
neurons, SpikingJelly's `layer.*` wrappers, `SeqToANNContainer` and every torch.nn module are leaves.
A forward pass on a small example ([2, 2, C, H, W] for images, [2, 2, N] for a sequence of N features
per timestep, as SHD's spike trains) gives every node's shape. The traced graph is then
read as the profile language reads a network: a chain of layers in which a tensor read by two
consumers opens a `residual` (main + shortcut) that an add closes, and a tensor read by more paths, or
paths that meet in a concatenation or SEW's AND / IAND product, a `branches` block (export_branches.py;
series-parallel graphs, forks nested in paths). Every module becomes exactly one profile layer (or
none: `nn.Identity`), with its settings checked against what the language can say. Anything else (a
graph that is not series-parallel, another join, dropout, an activation function, a neuron type or
surrogate the language has not) raises `ExportError` naming the module path, its type and what the
profile language lacks; nothing is dropped or approximated.

The written text is read back by the package's profile loader (the Swift loader's mirror) and each
layer's inferred shape is held to the traced one, so a mapping mistake fails the export rather than
giving a plan of another network.
"""

from __future__ import annotations

import copy
import math
import operator
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.fx as fx
import torch.nn as nn

from .profile import NeuronSpec, OptimizerSpec, parse

_TRACE_T = 2  # timesteps and batch of the tracing pass (shapes only)
_TRACE_B = 2


class ExportError(Exception):
    """A module the profile language cannot express: the module path, its type, the problem, the fix."""

    def __init__(self, path: str, kind: str, problem: str, fix: str):
        super().__init__(path, kind, problem, fix)
        self.path, self.kind, self.problem, self.fix = path, kind, problem, fix
        self.also: list = []  # further modules the export could not express, found in the same pass

    def __str__(self) -> str:
        # One paragraph per problem; the modules that share it are listed together.
        groups: dict = {}
        for error in [self] + self.also:
            groups.setdefault((error.kind, error.problem, error.fix), []).append(error.path)
        text = []
        for (kind, problem, fix), paths in groups.items():
            named = [f"'{p}'" for p in paths if p]
            where = (f"module {named[0]}" if len(named) == 1
                     else f"modules {', '.join(named)}" if named else "the model")
            kind_text = f" ({kind})" if kind else ""
            text.append(f"export: error: {where}{kind_text}: {problem}\n  fix: {fix}")
        return "\n".join(text)


@dataclass
class Entry:
    """One profile layer: its kind, name, settings in write order, a comment, nested lists."""

    kind: str
    name: str
    fields: dict = field(default_factory=dict)
    shape: tuple = ()          # the traced per-sample output shape
    neuron: Optional[NeuronSpec] = None
    main: list = field(default_factory=list)
    shortcut: list = field(default_factory=list)
    comment: str = ""
    join: str = ""                             # branches (export_branches.py)
    paths: list = field(default_factory=list)  # branches: one list of entries per path
    # The traced name the entry was made from (a module path such as 'layer1.0.conv1', or an fx node's
    # name), kept when `name` is shortened: `snnmem-torch check` measures the model through it.
    source: str = ""

    def __post_init__(self):
        self.source = self.source or self.name


# ----------------------------------------------------------------------------------------------
# Tracing


def _sj():
    from spikingjelly.activation_based import base, functional, layer, neuron, surrogate
    return base, functional, layer, neuron, surrogate


class _Tracer(fx.Tracer):
    """torch.fx's tracer with SpikingJelly's stateful and step modules kept whole."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        base = _sj()[0]
        from .attention import SpikingSelfAttention, TokenMean, Tokens
        from .reversible import ReversibleStage
        from .token_layernorm import TokenLayerNorm
        if isinstance(m, (base.StepModule, base.MemoryModule, ReversibleStage, SpikingSelfAttention, Tokens, TokenMean,
                          TokenLayerNorm)):
            return True
        return super().is_leaf_module(m, qualname)


def _type_name(obj) -> str:
    t = obj if isinstance(obj, type) else type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _is_tensor_node(node) -> bool:
    return isinstance(node, fx.Node) and "tensor_meta" in node.meta and hasattr(node.meta["tensor_meta"], "shape")


def _shape(node) -> tuple:
    return tuple(node.meta["tensor_meta"].shape)


def _module_path(node) -> str:
    """The module a node belongs to: its own for a module call, else the innermost enclosing one."""
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        return list(stack.values())[-1][0]
    return ""


def _node_what(node) -> str:
    if node.op == "call_function":
        return getattr(node.target, "__name__", str(node.target))
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    return str(node.target)


class _Shapes(fx.Interpreter):
    """Runs the traced graph once, keeping each tensor's shape in node.meta["tensor_meta"] (as torch.fx's
    ShapeProp), and names the module that fails to run on its input."""

    def run_node(self, node):
        from torch.fx.passes.shape_prop import _extract_tensor_metadata
        try:
            result = super().run_node(node)
        except ExportError:
            raise
        except Exception as error:  # noqa: BLE001 - reported with the node that raised it
            shapes = [list(a.shape) for a in self._tensors(node)]
            if node.op == "call_module":
                kind = _type_name(self.module.get_submodule(node.target))
            else:
                kind = _node_what(node)
            raise ExportError(_module_path(node) or node.name, kind,
                              f"does not run in multi-step mode on {shapes} ([T, B, ...]): {error}",
                              "use SpikingJelly's layer.* modules (or wrap torch.nn ones in layer.SeqToANNContainer) "
                              "so that every layer takes [T, B, ...]") from None
        if isinstance(result, torch.Tensor):
            node.meta["tensor_meta"] = _extract_tensor_metadata(result)
        return result

    def _tensors(self, node) -> list:
        values = []
        for arg in list(node.args) + list(node.kwargs.values()):
            if isinstance(arg, fx.Node) and isinstance(self.env.get(arg), torch.Tensor):
                values.append(self.env[arg])
        return values


# ----------------------------------------------------------------------------------------------
# The graph as a chain of layers with residual branches


class _Reader:
    def __init__(self, gm: fx.GraphModule, timesteps: int, batch: int, sample: tuple):
        self.gm = gm
        self.sample = sample  # one sample's shape: (C, H, W) or (features,)
        self.modules = dict(gm.named_modules())
        self.nodes = list(gm.graph.nodes)
        self.order = {node: i for i, node in enumerate(self.nodes)}
        self.timesteps, self.batch = timesteps, batch
        self._pdom = None
        self.problems: list = []  # modules refused so far; the walk goes on past them to find the rest

    # A tensor's consumers: nodes that take it as an argument and give a tensor (size queries aside).
    def users(self, node) -> list:
        out = []
        for user in node.users:
            if user.op == "output" or _is_tensor_node(user):
                out.append(user)
            else:
                raise self._refuse(user, f"{_node_what(user)} reads the tensor as a value the profile cannot hold "
                                   "(a size, a list)", "compute sizes outside forward")
        return sorted(out, key=self.order.get)

    def _refuse(self, node, problem: str, fix: str) -> ExportError:
        path = _module_path(node)
        if node.op == "call_module":
            kind = _type_name(self.modules[node.target])
        else:
            kind = _node_what(node)
        return ExportError(path or node.name, kind, problem, fix)

    def post_dominators(self) -> dict:
        if self._pdom is None:
            pdom = {}
            for node in reversed(self.nodes):
                successors = [u for u in node.users]
                if not successors:
                    pdom[node] = {node}
                else:
                    common = set.intersection(*(pdom[s] for s in successors))
                    pdom[node] = common | {node}
            self._pdom = pdom
        return self._pdom

    def join_of(self, node):
        """The first node every path from `node` passes through (its immediate post-dominator)."""
        candidates = self.post_dominators()[node] - {node}
        return min(candidates, key=self.order.get) if candidates else None

    # -- the chain --------------------------------------------------------------------------------

    def read(self) -> tuple:
        placeholders = [n for n in self.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            raise ExportError("", "", f"forward takes {len(placeholders)} inputs; a profile has one input tensor",
                              "export a module whose forward takes one tensor ([T, B, C, H, W] or [T, B, N])")
        start = placeholders[0]
        shape = _shape(start)
        if len(shape) != len(self.sample) + 2:  # pragma: no cover - the tracing pass feeds [T, B, *sample]
            raise AssertionError(f"the traced input is {list(shape)}, not [T, B, *{list(self.sample)}]")
        try:
            layers, last = self.chain(start, None)
        except ExportError as error:
            self.problems.append(error)
        else:
            out = _shape(last)[2:]
            if len(out) != 1 or out[0] < 2:
                self.problems.append(self._refuse(last, f"the network gives {list(out)} per sample and timestep; a "
                                                  "profile's network ends in class scores (at least 2)",
                                                  "end the model with a flatten and a linear layer"))
        if self.problems:
            first = self.problems[0]
            first.also = self.problems[1:]
            raise first
        return layers, last

    def chain(self, value, stop) -> tuple:
        """The layers from `value` on, until `stop` (a residual's add, or a set of a join's nodes) or the
        output; returns them and the node whose tensor ends the chain."""
        layers = []
        stops = stop if isinstance(stop, frozenset) else frozenset() if stop is None else frozenset({stop})
        while True:
            users = self.users(value)
            if len(users) == 1 and users[0] in stops:
                return layers, value
            if len(users) == 1:
                user = users[0]
                if user.op == "output":
                    return layers, value
                if self._is_add(user):
                    raise self._refuse(user, "adds two tensors that do not branch from one tensor, which is not a "
                                       "`residual` (main + shortcut from the same input)",
                                       "add only a branch and its shortcut from the same tensor")
                if self._is_readout(user):
                    readout_users = self.users(user)
                    if len(readout_users) == 1 and readout_users[0].op == "output":
                        return layers, value
                    raise self._refuse(user, "averages over time before the last layer; a profile's loss averages "
                                       "the last layer's output over T", "average over time only at the output")
                token_norm = self.token_norm(user)
                if token_norm is not None:
                    entry, value = token_norm
                    layers.extend([entry] if entry is not None else [])
                    continue
                layers.extend(self.layer(user))
                value = user
            elif len(users) >= 2:
                block, value = self.fork(value, users, stops)
                layers.append(block)
            else:
                raise self._refuse(value, "its output is not used", "remove the unused computation")

    def where(self, node) -> str:
        return _module_path(node) or node.name

    def _is_tensor(self, value) -> bool:
        return _is_tensor_node(value)

    def fork(self, value, users, stops) -> tuple:
        """A tensor read by several paths: a `residual` when two paths meet in one add of both, else a
        `branches` block (export_branches.py). Its join must lie inside the block the fork is in."""
        from .export_branches import read_branches
        join = self.join_of(value)
        if join is None:
            raise self._refuse(value, "its output takes paths that never meet", "join the paths (a sum, "
                               "torch.cat along channels, SEW's AND or IAND)")
        if stops and (join in stops or self.order[join] > min(self.order[s] for s in stops)):
            raise self._refuse(value, f"its paths meet in '{self.where(join)}', outside the block this fork is in: the "
                               "graph is not series-parallel, which the profile language's nested blocks cannot say",
                               "let each fork's paths meet before the enclosing join")
        simple_add = (len(users) == 2 and self._is_add(join) and
                      not any(self._is_add(a) and list(a.users) == [join] for a in self._tensor_args(join)))
        if simple_add:
            return self.residual(value, users)
        return read_branches(self, value, users, join, stops)

    def residual(self, value, users) -> tuple:
        join = self.join_of(value)
        fork = f"'{_module_path(value) or value.name}'"
        if join is None:
            raise self._refuse(value, "its output takes two paths that never meet; the profile language's only "
                               "branching is a residual (main + shortcut, added)", "join the paths with an add")
        if not self._is_add(join) or len(self._tensor_args(join)) != 2:
            what = _node_what(join)
            if join.op == "output":
                problem = f"the model returns more than one tensor computed from {fork}; a profile's network gives one"
            elif self._is_cat(join):
                problem = (f"concatenates two paths from {fork}: the profile language has no concatenation "
                           "(its only join is a residual add of main + shortcut)")
            elif what in ("mul", "Tensor.mul", "and_", "mul_"):
                problem = (f"joins two paths from {fork} with a product ({what}): the profile language joins paths "
                           "only by adding them (a residual); SEW's AND and IAND connections are products")
            else:
                problem = (f"joins two paths from {fork} with {what}: the profile language joins paths only by "
                           "adding them (a residual of main + shortcut)")
            raise self._refuse(join, problem, "use an addition of a branch and its shortcut (SEW ADD, spiking "
                               "ResNet); concatenation and products need profile-language extensions (issue 13)")
        branches = []
        for user in users:
            if user is join:
                branches.append(([], None))
            else:
                entries = self.layer(user)
                more, _ = self.chain(user, join)
                branches.append((entries + more, user))
        nonempty = [b for b in branches if b[1] is not None]
        if not nonempty:
            raise self._refuse(join, "adds a tensor to itself", "write 2 * x as a layer the profile has (none yet)")
        # main is the branch that runs first (snnmem's residual runs main, then shortcut).
        nonempty.sort(key=lambda b: self.order[b[1]])
        main = nonempty[0][0]
        shortcut = nonempty[1][0] if len(nonempty) == 2 else []
        if not main:
            raise self._refuse(join, "its main branch has no layer", "a residual needs at least one layer in main")
        path = _module_path(join)
        entry = Entry("residual", path or "residual", shape=_shape(join)[2:], main=main, shortcut=shortcut)
        _relative_names(entry, path)
        return entry, join

    # -- node kinds --------------------------------------------------------------------------------

    @staticmethod
    def _tensor_args(node) -> list:
        return [a for a in list(node.args) + list(node.kwargs.values()) if _is_tensor_node(a)]

    def _is_add(self, node) -> bool:
        if node.op == "call_function" and node.target in (operator.add, operator.iadd, torch.add):
            return len(self._tensor_args(node)) == 2 and not node.kwargs.get("alpha")
        if node.op == "call_method" and node.target in ("add", "add_", "__add__"):
            return len(self._tensor_args(node)) == 2 and not node.kwargs.get("alpha")
        return False

    @staticmethod
    def _is_cat(node) -> bool:
        return (node.op == "call_function" and node.target in (torch.cat, torch.concat, torch.stack)) or \
               (node.op == "call_method" and node.target in ("cat",))

    def _is_readout(self, node) -> bool:
        """`out.mean(0)` over [T, B, classes]: what the loss does anyway."""
        if node.op == "call_method" and node.target == "mean":
            args = list(node.args[1:]) + [node.kwargs.get("dim")]
        elif node.op == "call_function" and node.target is torch.mean:
            args = list(node.args[1:]) + [node.kwargs.get("dim")]
        else:
            return False
        dims = [a for a in args if a is not None]
        return len(dims) == 1 and dims[0] in (0, (0,), [0]) and not node.kwargs.get("keepdim")

    def token_norm(self, node) -> Optional[tuple]:
        """A spiking transformer's layer norm over tokens as users write it, `x.transpose(-1, -2)` on
        [T, B, C, N], an nn.LayerNorm(C), `.transpose(-1, -2)` back (three nodes, no module of its own):
        (the `layernorm` entry, the node ending it), or None for any other node."""
        from .layernorm import export_layernorm, swaps_last_two
        if not swaps_last_two(node):
            return None
        users = self.users(node)
        if len(users) != 1 or users[0].op != "call_module" or type(self.modules[users[0].target]) is not nn.LayerNorm:
            return None
        norm, after = users[0], self.users(users[0])
        if len(after) != 1 or not swaps_last_two(after[0]):
            return None
        path, module = str(norm.target), self.modules[norm.target]
        inner, outer = tuple(_shape(node.args[0])[2:]), tuple(_shape(after[0])[2:])

        def refuse(problem: str, fix: str):
            return ExportError(path, _type_name(module), problem, fix)
        try:
            return Entry("layernorm", path, export_layernorm(module, inner, refuse, over_tokens=True), outer), after[0]
        except ExportError as error:
            self.problems.append(error)
            return None, after[0]

    def layer(self, node) -> list:
        """The profile layers of one traced node (none for an identity)."""
        args = self._tensor_args(node)
        if len(args) != 1:
            if self._is_cat(node):
                raise self._refuse(node, "concatenates tensors that do not all branch from one tensor; a profile's "
                                   "concat joins the paths of one fork", "concatenate paths that start from one tensor")
            if self._is_add(node):
                raise self._refuse(node, "adds tensors that do not branch from one tensor; a profile's sum joins the "
                                   "paths of one fork", "add paths that start from one tensor")
            raise self._refuse(node, f"combines {len(args)} tensors; the profile language joins tensors only as the "
                               "paths of one fork (add, concat, and, iand)",
                               "join paths that start from one tensor with a sum, torch.cat or SEW's AND / IAND")
        in_shape, out_shape = _shape(args[0]), _shape(node)
        if node.op == "call_module":
            module = self.modules[node.target]
            try:
                return _module_entries(str(node.target), module, in_shape, out_shape, self.timesteps, self.batch)
            except ExportError as error:
                self.problems.append(error)
                return []
        if node.op in ("call_function", "call_method"):
            what = _node_what(node)
            if what in ("flatten", "Tensor.flatten", "Tensor.view", "Tensor.reshape", "reshape", "Tensor.flatten"):
                if len(in_shape) >= 3 and out_shape == tuple(in_shape[:2]) + (math.prod(in_shape[2:]),):
                    return [Entry("flatten", node.name, shape=out_shape[2:])]
                raise self._refuse(node, f"reshapes {list(in_shape)} to {list(out_shape)}; the profile's flatten "
                                   "keeps [T, B] and flattens the rest", "flatten from dimension 2 in multi-step mode")
            if what in ("mul", "Tensor.mul", "truediv", "sub", "Tensor.sub", "rsub"):
                raise self._refuse(node, f"applies {what} to a tensor; the profile language has no elementwise "
                                   "arithmetic layer (products are joins only: SEW's AND a * b and IAND (1 - a) * b "
                                   "of two paths from one tensor)",
                                   "use SEW's ADD, AND or IAND connection, or a module the profile language has")
            raise self._refuse(node, f"{what} has no profile layer", "use a module the profile language has: conv, "
                               "batch norm, linear, pooling, flatten, LIF/IF neurons, residual adds")
        raise self._refuse(node, f"a {node.op} node has no profile layer", "use modules, not attributes")


def _token_entries(path: str, module: nn.Module, inner: tuple, outer: tuple) -> Optional[list]:
    """The spiking-transformer layers as the measure package builds them (attention.py): its self-attention
    modules, token reshapes and conv1d; None for any other module."""
    from .attention import SpikeDrivenSelfAttention, SpikingSelfAttention, TokenMean, Tokens
    _, _, sj_layer, _, _ = _sj()
    kind = _type_name(module)
    if type(module) is Tokens:
        return [Entry("tokens", path, {}, outer)]
    if type(module) is TokenMean:
        return [Entry("tokenmean", path, {}, outer)]
    if type(module) in (nn.Conv1d, sj_layer.Conv1d):
        if module.dilation != (1,) or module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ExportError(path, kind, f"dilation {module.dilation}, padding {module.padding!r} ({module.padding_mode}); "
                              "a profile's conv1d pads both ends with zeros by a number and has no dilation",
                              "use dilation=1, padding_mode='zeros' and a whole-number padding")
        fields = {"out": module.out_channels}
        for key, value, default in (("kernel", module.kernel_size[0], 1), ("stride", module.stride[0], 1),
                                    ("padding", module.padding[0], 0), ("groups", module.groups, 1)):
            if value != default:
                fields[key] = value
        if module.bias is None:
            fields["bias"] = False
        return [Entry("conv1d", path, fields, outer)]
    if isinstance(module, SpikingSelfAttention):
        return [_attention_entry(path, module, inner, outer, sdsa=isinstance(module, SpikeDrivenSelfAttention))]
    return None


def _attention_entry(path: str, module: nn.Module, inner: tuple, outer: tuple, sdsa: bool) -> Entry:
    """One `attention` layer: its parts are what the profile's loader makes for the kind (kernel-1 conv1d
    without bias for q, k and v, with bias for the projection, batch norms, the profile's default neuron and
    the attention neuron at `threshold`); anything else is refused, since the profile could not say it."""
    _, _, sj_layer, _, _ = _sj()
    kind = _type_name(module)
    channels = inner[0]
    fire = "talking_heads_lif" if sdsa else "attn_lif"
    lifs = ["q_lif", "k_lif", "v_lif"] + ([] if sdsa else ["proj_lif"])
    for name in ["q_conv", "k_conv", "v_conv", "proj_conv", "q_bn", "k_bn", "v_bn", "proj_bn", fire] + lifs:
        if not hasattr(module, name):
            raise ExportError(path, kind, f"it has no '{name}'", "build the attention as the measure package does")
    for name in ("q_conv", "k_conv", "v_conv", "proj_conv"):
        conv = getattr(module, name)
        wants_bias = name == "proj_conv"
        if type(conv) not in (nn.Conv1d, sj_layer.Conv1d) or conv.kernel_size != (1,) or conv.in_channels != channels \
                or conv.out_channels != channels or (conv.bias is not None) != wants_bias:
            raise ExportError(f"{path}.{name}", _type_name(conv), f"an attention's {name} is a kernel-1 conv1d from "
                              f"{channels} to {channels} channels {'with' if wants_bias else 'without'} a bias",
                              "build the attention's convolutions as the profile's attention layer has them")
    spec = _neuron_spec(f"{path}.q_lif", module.q_lif)
    for name in lifs + [fire]:
        other = _neuron_spec(f"{path}.{name}", getattr(module, name))
        if name == fire:
            threshold = other.threshold
            other.threshold = spec.threshold
        if _neuron_key(other) != _neuron_key(spec):
            raise ExportError(f"{path}.{name}", _type_name(getattr(module, name)), "its settings differ from q_lif's; a "
                              "profile's attention runs every neuron of it as the profile's default neuron (the "
                              "attention neuron with its own threshold)", "give the attention's neurons one setting")
    entry = Entry("attention", path, {"kind": "sdsa" if sdsa else "ssa", "heads": int(module.heads),
                                      "scale": float(module.scale), "threshold": float(threshold)}, outer)
    entry.neuron = spec
    return entry


def _relative_names(entry: Entry, prefix: str) -> None:
    """Names inside a residual relative to its module ('layer1.0.conv1' -> 'conv1'), where unique."""
    if not prefix:
        return
    for branch in (entry.main, entry.shortcut, *entry.paths):
        short = [e.name[len(prefix) + 1:] if e.name.startswith(prefix + ".") else e.name for e in branch]
        if len(set(short)) == len(short):
            for e, s in zip(branch, short):
                e.name = s


# ----------------------------------------------------------------------------------------------
# Modules


def _pair(value, what: str, path: str, module) -> int:
    values = value if isinstance(value, (tuple, list)) else (value, value)
    if len(set(values)) != 1:
        raise ExportError(path, _type_name(module), f"{what} {tuple(values)} differs between height and width; the "
                          f"profile language has one {what} for both", f"use a square {what}")
    return int(values[0])


def _module_entries(path: str, module: nn.Module, in_shape: tuple, out_shape: tuple, timesteps: int,
                    batch: int) -> list:
    """One module called on [T, B, ...] (or on [T*B, ...] inside a SeqToANNContainer)."""
    _, _, sj_layer, sj_neuron, _ = _sj()
    kind = _type_name(module)
    inner, outer = tuple(in_shape[2:]), tuple(out_shape[2:])

    def refuse(problem: str, fix: str):
        return ExportError(path, kind, problem, fix)

    if isinstance(module, sj_layer.SeqToANNContainer):
        # Its modules run on [T*B, ...]: each one is a layer of its own, in order.
        entries, _ = _run_children(_flatten_sequential(module, path), inner, merged=True, timesteps=timesteps,
                                   batch=batch)
        return entries
    from .reversible import ReversibleStage
    if isinstance(module, ReversibleStage):
        return [_reversible_entry(path, module, inner, timesteps, batch)]
    if isinstance(module, nn.Identity):
        return []
    token_entries = _token_entries(path, module, inner, outer)
    if token_entries is not None:
        return token_entries
    from .export_recurrent import recurrent_entries
    recurrent = recurrent_entries(path, module, inner, outer, Entry, _neuron_spec, ExportError)
    if recurrent is not None:
        return recurrent
    if type(module) is sj_layer.Dropout and len(in_shape) == len(inner) + 2:
        # Multi-step SpikingJelly dropout: one mask per sample shared by every timestep, the profile's `dropout`.
        return [Entry("dropout", path, {"p": float(module.p)}, outer)]
    if isinstance(module, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, sj_layer.Dropout)):
        what = ("zeroes whole channels" if isinstance(module, (nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, sj_layer.Dropout2d))
                else "draws a new mask for every timestep")
        raise refuse(f"{what}; the profile's `dropout` is SpikingJelly's multi-step layer.Dropout, one element mask "
                     "per sample shared by all timesteps", "use spikingjelly.activation_based.layer.Dropout(p) outside "
                     "a SeqToANNContainer, or remove the dropout for the export")
    if type(module) is sj_layer.VotingLayer:
        size = int(module.voting_size)
        if len(inner) != 1 or inner[0] % size != 0:
            raise refuse(f"votes over groups of {size} on a {list(inner)} input; a profile's voting takes flat features "
                         "that the groups divide", f"give it a multiple of {size} flat features")
        return [Entry("voting", path, {"size": size}, outer)]
    if isinstance(module, sj_neuron.BaseNode):
        return [Entry("neuron", path, shape=outer, neuron=_neuron_spec(path, module))]
    if type(module) is _adaptive_lif_type():
        return [Entry("neuron", path, shape=outer, neuron=_adaptive_lif_spec(path, module))]
    if type(module) in (nn.Conv2d, sj_layer.Conv2d):
        if module.padding_mode != "zeros":
            raise refuse(f"padding_mode '{module.padding_mode}'; the profile's conv pads with zeros",
                         "use padding_mode='zeros'")
        if _pair(module.dilation, "dilation", path, module) != 1:
            raise refuse(f"dilation {module.dilation}; the profile language has no dilated convolution",
                         "use dilation 1")
        kernel = _pair(module.kernel_size, "kernel", path, module)
        stride = _pair(module.stride, "stride", path, module)
        if isinstance(module.padding, str):
            if module.padding == "valid":
                padding = 0
            elif kernel % 2 == 1:
                padding = kernel // 2
            else:
                raise refuse("padding='same' with an even kernel pads unevenly; a profile pads evenly",
                             "use an odd kernel or integer padding")
        else:
            padding = _pair(module.padding, "padding", path, module)
        if padding >= kernel:
            raise refuse(f"padding {padding} is not smaller than the kernel {kernel}, which a profile's conv requires",
                         f"use padding at most {kernel - 1}")
        fields = {"out": module.out_channels, "kernel": kernel}
        if stride != 1:
            fields["stride"] = stride
        if padding:
            fields["padding"] = padding
        if module.groups != 1:
            fields["groups"] = module.groups
        if module.bias is not None:
            fields["bias"] = True
        return [Entry("conv", path, fields, outer)]
    from .token_layernorm import TokenLayerNorm
    if type(module) in (nn.LayerNorm, TokenLayerNorm):
        from .layernorm import export_layernorm
        return [Entry("layernorm", path, export_layernorm(module, tuple(inner), refuse), outer)]
    if type(module) in (nn.BatchNorm2d, sj_layer.BatchNorm2d, nn.BatchNorm1d, sj_layer.BatchNorm1d):
        if not module.affine:
            raise refuse("affine=False; a profile's batch norm has a learnable weight and bias",
                         "use affine=True")
        if not module.track_running_stats:
            raise refuse("track_running_stats=False; a profile's batch norm keeps running mean and variance",
                         "use track_running_stats=True")
        is_2d = isinstance(module, nn.BatchNorm2d)
        if is_2d != (len(inner) == 3):
            raise refuse(f"normalizes a {list(inner)} input per sample; a profile's batch norm is BatchNorm2d on "
                         "[C, H, W] or BatchNorm1d on flat features", "use BatchNorm1d only after flatten")
        return [Entry("batchnorm", path, {}, outer)]
    if type(module) in (nn.Linear, sj_layer.Linear):
        if len(inner) != 1:
            raise refuse(f"is applied to a {list(inner)} input; a profile's linear takes flat features",
                         "flatten before the linear layer")
        fields = {"out": module.out_features}
        if module.bias is None:
            fields["bias"] = False
        return [Entry("linear", path, fields, outer)]
    if type(module) in (nn.AvgPool2d, sj_layer.AvgPool2d, nn.MaxPool2d, sj_layer.MaxPool2d):
        is_max = isinstance(module, nn.MaxPool2d)
        if module.ceil_mode:
            raise refuse("ceil_mode=True; a profile's pooling rounds its output size down", "use ceil_mode=False")
        if is_max and (module.return_indices or _pair(module.dilation, "dilation", path, module) != 1):
            raise refuse("returns indices or is dilated; a profile's max pooling is neither",
                         "use return_indices=False, dilation=1")
        kernel = _pair(module.kernel_size, "kernel", path, module)
        stride = _pair(module.stride if module.stride is not None else kernel, "stride", path, module)
        padding = _pair(module.padding, "padding", path, module)
        fields = {"kernel": kernel}
        if stride != kernel:
            fields["stride"] = stride
        if padding:
            fields["padding"] = padding
        return [Entry("maxpool" if is_max else "avgpool", path, fields, outer)]
    if type(module) in (nn.AdaptiveAvgPool2d, sj_layer.AdaptiveAvgPool2d):
        c, h, w = inner
        oh, ow = outer[1], outer[2]
        if (oh, ow) == (1, 1) and h == w:
            return [Entry("globalavgpool", path, {}, outer)]
        if (oh, ow) != (1, 1) and h % oh == 0 and w % ow == 0 and h // oh == w // ow:
            k = h // oh
            return [Entry("avgpool", path, {"kernel": k}, outer,
                          comment=f"AdaptiveAvgPool2d to {oh}x{ow} on {h}x{w}: the same {k}x{k} windows (both save "
                          "their input)")]
        # Uneven, overlapping or upsampling windows (e.g. a 1x1 map pooled to 7x7 in a VGG at 32x32).
        return [Entry("adaptiveavgpool", path, {"output": [oh, ow]}, outer)]
    if type(module) in (nn.ConvTranspose2d, sj_layer.ConvTranspose2d):
        kernel = _pair(module.kernel_size, "kernel", path, module)
        stride = _pair(module.stride, "stride", path, module)
        padding = _pair(module.padding, "padding", path, module)
        if module.padding_mode != "zeros" or module.groups != 1 or _pair(module.dilation, "dilation", path, module) != 1 \
                or _pair(module.output_padding, "output_padding", path, module) != 0:
            raise refuse(f"groups {module.groups}, dilation {module.dilation}, output_padding {module.output_padding}; a "
                         "profile's convtranspose has none of them", "use groups=1, dilation=1, output_padding=0")
        if padding >= kernel:
            raise refuse(f"padding {padding} is not smaller than the kernel {kernel}", f"use padding at most {kernel - 1}")
        fields = {"out": module.out_channels, "kernel": kernel}
        if stride != 1:
            fields["stride"] = stride
        if padding:
            fields["padding"] = padding
        if module.bias is not None:
            fields["bias"] = True
        return [Entry("convtranspose", path, fields, outer)]
    if type(module) in (nn.Upsample, sj_layer.Upsample):
        factor = module.scale_factor
        factors = factor if isinstance(factor, (tuple, list)) else (factor, factor)
        if module.mode != "nearest" or module.size is not None or len(set(factors)) != 1 \
                or float(factors[0]) != int(factors[0]) or len(inner) != 3:
            raise refuse(f"upsamples with mode '{module.mode}', size {module.size}, scale_factor {factor}; a profile's "
                         "upsample is nearest-neighbour by one whole factor on [C, H, W]",
                         "use mode='nearest' with an integer scale_factor")
        return [Entry("upsample", path, {"factor": int(factors[0])}, outer)]
    if type(module) in (nn.Flatten, sj_layer.Flatten):
        if len(outer) == 1 and outer[0] == math.prod(inner):
            return [Entry("flatten", path, {}, outer)]
        raise refuse(f"flattens {list(inner)} to {list(outer)} per sample; a profile's flatten makes one flat vector",
                     "flatten from the channel dimension on (start_dim=1 in a SpikingJelly layer)")
    if isinstance(module, nn.Sequential):
        raise refuse("a Sequential subclass traced as one module has no profile layer", "use nn.Sequential")
    raise refuse(f"{type(module).__name__} has no profile layer", "the profile language has conv, batchnorm, layernorm, "
                 "linear, avgpool, maxpool, globalavgpool, adaptiveavgpool, upsample (nearest), flatten, dropout, voting, "
                 "LIF/IF/PLIF neurons, residual adds and branches (sums, concatenation, SEW AND/IAND)")


def _run_children(children: list, inner: tuple, merged: bool, timesteps: int, batch: int) -> tuple:
    """The entries of modules run one after another on a small example ([T*B, ...] when `merged`, as in
    a SeqToANNContainer, else [T, B, ...]), and the per-sample shape they end with."""
    _, functional, _, _, _ = _sj()
    lead = (_TRACE_T * _TRACE_B,) if merged else (_TRACE_T, _TRACE_B)
    x = torch.rand(lead + tuple(inner))
    entries = []
    with torch.no_grad():
        for child_path, child in children:
            runner = copy.deepcopy(child)
            try:
                y = runner(x)
            except Exception as error:  # noqa: BLE001 - reported with the module
                raise ExportError(child_path, _type_name(child), f"does not run on {list(x.shape)}: {error}",
                                  "check the module's input") from None
            functional.reset_net(runner)
            entries += _module_entries(child_path, child, (_TRACE_T, _TRACE_B) + tuple(x.shape[len(lead):]),
                                       (_TRACE_T, _TRACE_B) + tuple(y.shape[len(lead):]), timesteps, batch)
            x = y
    return entries, tuple(x.shape[len(lead):])


def _reversible_entry(path: str, module: nn.Module, inner: tuple, timesteps: int, batch: int) -> Entry:
    """snnmem's own reversible stage (the measure package's `reversible.ReversibleStage`): every block
    Y1 = X1 + F(X2), Y2 = X2 + G(Y1) on channel halves, written back as `reversible:` when its blocks repeat
    one f and one g."""
    half = (inner[0] // 2,) + tuple(inner[1:])
    shapes = []
    for index, block in enumerate(module.blocks):
        f, _ = _run_children(_flatten_sequential(block.f, f"{path}.blocks.{index}.f"), half, False, timesteps, batch)
        g, _ = _run_children(_flatten_sequential(block.g, f"{path}.blocks.{index}.g"), half, False, timesteps, batch)
        for branch, prefix in ((f, f"{path}.blocks.{index}.f."), (g, f"{path}.blocks.{index}.g.")):
            for e in branch:
                e.name = e.name[len(prefix):] if e.name.startswith(prefix) else e.name
        shapes.append((f, g))
    f, g = shapes[0]
    for index, (fi, gi) in enumerate(shapes[1:], 1):
        if _structure(fi) != _structure(f) or _structure(gi) != _structure(g):
            raise ExportError(f"{path}.blocks.{index}", _type_name(module.blocks[index]),
                              "differs from block 0; a profile's reversible stage repeats one f and one g",
                              "split the stage where blocks differ")
    entry = Entry("reversible", path, {"blocks": len(module.blocks)}, inner, main=f,
                  shortcut=[] if _structure(g) == _structure(f) else g)
    return entry


def _structure(entries: list) -> list:
    return [(e.kind, e.name, sorted(e.fields.items()), e.neuron and _neuron_key(e.neuron), _structure(e.main),
             _structure(e.shortcut)) for e in entries]


def _flatten_sequential(module: nn.Module, path: str) -> list:
    out = []
    for name, child in module.named_children():
        child_path = f"{path}.{name}"
        if type(child) is nn.Sequential:
            out += _flatten_sequential(child, child_path)
        else:
            out.append((child_path, child))
    return out


def _neuron_spec(path: str, module: nn.Module) -> NeuronSpec:
    _, _, _, sj_neuron, sj_surrogate = _sj()
    kind = _type_name(module)

    def refuse(problem: str, fix: str):
        return ExportError(path, kind, problem, fix)

    if type(module) not in (sj_neuron.LIFNode, sj_neuron.IFNode, sj_neuron.ParametricLIFNode):
        raise refuse(f"the profile language has no {type(module).__name__} neuron; its neurons are SpikingJelly's "
                     "LIFNode, IFNode and ParametricLIFNode", "use one of those, or extend the profile language's neuron types")
    spec = NeuronSpec()
    spec.type = {sj_neuron.LIFNode: "lif", sj_neuron.IFNode: "if", sj_neuron.ParametricLIFNode: "plif"}[type(module)]
    if spec.type == "plif":
        # The profile gives the initial tau; the builder sets w = -ln(tau - 1), so 1 / sigmoid(w) = tau.
        # w is a float32: 7 significant digits are what it holds of tau (init_tau=4.0 reads back as 4.0).
        spec.tau = float(f"{float(1.0 / torch.sigmoid(module.w.detach().double())):.7g}")
        if not spec.tau > 1.0:
            raise refuse(f"its w = {float(module.w)} gives tau = {spec.tau}; a plif profile neuron needs tau > 1",
                         "start from a w below +inf (any init_tau > 1)")
        spec.decay_input = bool(module.decay_input)
    if spec.type == "lif":
        if not module.decay_input:
            raise refuse("decay_input=False; a profile's LIF decays its input (H = V + (X - (V - V_reset)) / tau)",
                         "use decay_input=True")
        spec.tau = float(module.tau)
    if getattr(module, "store_v_seq", False):
        raise refuse("store_v_seq=True keeps every timestep's v, which a profile's neuron does not",
                     "use store_v_seq=False")
    if getattr(module, "_neuron_precision", None) is not None:
        raise refuse("a neuron precision is set; a profile's neuron runs in the model's dtype",
                     "leave the neuron precision unset")
    spec.threshold = float(module.v_threshold)
    if module.v_reset is None:
        spec.reset = "soft"
    else:
        spec.reset = "hard"
        spec.v_reset = float(module.v_reset)
    spec.detach_reset = bool(module.detach_reset)
    surrogate = module.surrogate_function
    if type(surrogate) not in (sj_surrogate.ATan, sj_surrogate.Sigmoid):
        raise refuse(f"surrogate {type(surrogate).__name__}; the profile language has atan and sigmoid",
                     "use surrogate.ATan or surrogate.Sigmoid")
    if not surrogate.spiking:
        raise refuse("its surrogate is not in spiking mode", "use spiking=True")
    spec.surrogate = "atan" if type(surrogate) is sj_surrogate.ATan else "sigmoid"
    spec.surrogate_alpha = float(surrogate.alpha)
    return spec


def _adaptive_lif_type():
    from .adaptive_lif import AdaptiveLIFNode
    return AdaptiveLIFNode


def _adaptive_lif_spec(path: str, module) -> NeuronSpec:
    """The package's AdaptiveLIFNode (python/snnmem_torch/adaptive_lif.py) as `type: alif`: every setting is
    one of the profile's, so none is refused."""
    cfg = module.cfg
    spec = NeuronSpec(type="alif", tau=cfg.tau, threshold=cfg.threshold, rho=cfg.rho, beta=cfg.beta,
                      detach_reset=cfg.detach_reset, surrogate=cfg.surrogate, surrogate_alpha=cfg.alpha)
    if cfg.v_reset is None:
        spec.reset = "soft"
    else:
        spec.v_reset = float(cfg.v_reset)
    return spec


# ----------------------------------------------------------------------------------------------
# Optimizer


def _optimizer_spec(optimizer, model: nn.Module) -> OptimizerSpec:
    if optimizer is None:
        return OptimizerSpec()
    if isinstance(optimizer, OptimizerSpec):
        return optimizer
    if isinstance(optimizer, dict):
        spec = OptimizerSpec()
        spec.type = optimizer.get("type", "sgd")
        if spec.type not in ("sgd", "adam"):
            raise ExportError("", "optimizer", f"type '{spec.type}'; the profile language has sgd and adam",
                              "use sgd or adam")
        spec.learning_rate = float(optimizer.get("lr", 1e-3 if spec.type == "adam" else 0.1))
        spec.momentum = float(optimizer.get("momentum", 0.9 if spec.type == "sgd" else 0.0))
        spec.weight_decay = float(optimizer.get("weight_decay", 0.0))
        return spec
    kind = _type_name(optimizer)
    if type(optimizer) not in (torch.optim.SGD, torch.optim.Adam):
        raise ExportError("", kind, f"{type(optimizer).__name__} is not an optimizer the profile language has "
                          "(sgd, adam)", "plan with SGD or Adam")
    groups = optimizer.param_groups
    keys = ("lr", "momentum", "weight_decay", "betas", "eps")
    first = {k: groups[0].get(k) for k in keys}
    for group in groups[1:]:
        if {k: group.get(k) for k in keys} != first:
            raise ExportError("", kind, "its parameter groups differ in settings; a profile has one optimizer setting",
                              "use one parameter group")
    for flag in ("nesterov", "amsgrad", "maximize", "foreach", "fused", "capturable", "differentiable"):
        if groups[0].get(flag):
            raise ExportError("", kind, f"{flag}=True; the profile's {type(optimizer).__name__.lower()} is the plain "
                              "per-parameter loop PyTorch runs on the CPU by default", f"leave {flag} unset")
    optimized = {id(p) for g in groups for p in g["params"]}
    trainable = [name for name, p in model.named_parameters() if p.requires_grad and id(p) not in optimized]
    if trainable:
        raise ExportError(trainable[0], kind, "this parameter is not in the optimizer; a profile optimizes every "
                          "parameter", "give the optimizer model.parameters()")
    spec = OptimizerSpec()
    g = groups[0]
    spec.learning_rate = float(g["lr"])
    spec.weight_decay = float(g.get("weight_decay", 0.0))
    if type(optimizer) is torch.optim.Adam:
        spec.type = "adam"
        spec.momentum = 0.0
        spec.beta1, spec.beta2 = (float(b) for b in g["betas"])
        spec.epsilon = float(g["eps"])
    else:
        spec.type = "sgd"
        spec.momentum = float(g.get("momentum", 0.0))
        if g.get("dampening", 0):
            raise ExportError("", kind, "dampening is set; a profile's SGD has none", "use dampening=0")
    return spec


# ----------------------------------------------------------------------------------------------
# The profile text


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value)
    keyword = text.lower() in ("null", "true", "false", "yes", "no", "on", "off", "y", "n")
    return text if _PLAIN.match(text) and not keyword else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _flow(fields: dict) -> str:
    parts = []
    for key, value in fields.items():
        if isinstance(value, (list, tuple)):
            text = "[" + ", ".join(_flow(v) if isinstance(v, dict) else _scalar(v) for v in value) + "]"
        else:
            text = _flow(value) if isinstance(value, dict) else _scalar(value)
        parts.append(f"{key}: {text}")
    return "{" + ", ".join(parts) + "}"


def _neuron_fields(spec: NeuronSpec, base: Optional[NeuronSpec]) -> dict:
    """The profile's neuron mapping; with `base`, only what differs from it."""
    if spec.type == "li":
        # A leaky integrator has no spiking settings (the loader refuses them beside it): type and tau only.
        return {"type": "li", "tau": spec.tau}
    full = {"type": spec.type}
    if spec.type in ("lif", "plif", "alif"):
        full["tau"] = spec.tau
    if spec.type == "plif":
        full["decayInput"] = spec.decay_input
    if spec.type == "alif":
        full["rho"] = spec.rho
        full["beta"] = spec.beta
    full["threshold"] = spec.threshold
    full["reset"] = spec.reset
    if spec.reset == "hard":
        full["vReset"] = spec.v_reset
    full["detachReset"] = spec.detach_reset
    full["surrogate"] = {"type": spec.surrogate, "alpha": spec.surrogate_alpha}
    if base is None:
        return full
    base_fields = _neuron_fields(base, None)
    out = {}
    for key, value in full.items():
        if key == "vReset" and value == 0.0 and base_fields.get("vReset", 0.0) == 0.0:
            continue
        if base_fields.get(key, True if key == "decayInput" else None) != value:
            out[key] = value
    if spec.type in ("lif", "plif", "alif") and "tau" not in out and base.type not in ("lif", "plif", "alif"):
        out["tau"] = spec.tau
    return out


def _neuron_key(spec: NeuronSpec) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in _neuron_fields(spec, None).items()))


def _every_entry(entries: list):
    """Every entry, nested ones (residual branches, reversible f/g, branches' paths) after their parent."""
    for e in entries:
        yield e
        yield from _every_entry(e.main)
        yield from _every_entry(e.shortcut)
        for path in e.paths:
            yield from _every_entry(path)


def _all_neurons(entries: list) -> list:
    # An attention's neurons are the profile's default one.
    return [e.neuron for e in _every_entry(entries) if e.kind in ("neuron", "attention", "recurrent")]


def _unique_names(entries: list) -> None:
    seen = Counter()
    for e in entries:
        seen[e.name] += 1
    used = set()
    counts = Counter()
    for e in entries:
        if seen[e.name] > 1 or not e.name:
            base = e.name or e.kind
            while True:
                counts[base] += 1
                candidate = f"{base}_{counts[base]}"
                if candidate not in seen and candidate not in used:
                    break
            e.name = candidate
        e.name = e.name.replace("/", ".")
        used.add(e.name)
        _unique_names(e.main)
        _unique_names(e.shortcut)
        for path in e.paths:
            _unique_names(path)


def _write_entries(lines: list, entries: list, indent: int, default: NeuronSpec) -> None:
    pad = " " * indent
    for e in entries:
        if e.comment:
            lines.append(f"{pad}# {e.comment}")
        if e.kind == "residual":
            lines.append(f"{pad}- residual:")
            lines.append(f"{pad}    name: {_scalar(e.name)}")
            lines.append(f"{pad}    main:")
            _write_entries(lines, e.main, indent + 6, default)
            if e.shortcut:
                lines.append(f"{pad}    shortcut:")
                _write_entries(lines, e.shortcut, indent + 6, default)
            continue
        if e.kind == "branches":
            lines.append(f"{pad}- branches:")
            lines.append(f"{pad}    name: {_scalar(e.name)}")
            lines.append(f"{pad}    join: {e.join}")
            lines.append(f"{pad}    paths:")
            for path in e.paths:
                if not path:
                    lines.append(f"{pad}      - []  # the identity")
                    continue
                lines.append(f"{pad}      -")
                _write_entries(lines, path, indent + 8, default)
            continue
        if e.kind == "reversible":
            lines.append(f"{pad}- reversible:")
            lines.append(f"{pad}    name: {_scalar(e.name)}")
            lines.append(f"{pad}    blocks: {e.fields['blocks']}")
            lines.append(f"{pad}    f:")
            _write_entries(lines, e.main, indent + 6, default)
            if e.shortcut:
                lines.append(f"{pad}    g:")
                _write_entries(lines, e.shortcut, indent + 6, default)
            continue
        fields = {"name": e.name}
        if e.kind == "neuron":
            fields.update(_neuron_fields(e.neuron, default))
        else:
            fields.update(e.fields)
        if e.kind == "recurrent" and _neuron_fields(e.neuron, default):
            fields["neuron"] = _neuron_fields(e.neuron, default)
        lines.append(f"{pad}- {e.kind}: {_flow(fields)}")


def profile_text(entries: list, name: str, input_shape: tuple, timesteps: int, batch: int, dtype: str,
                 optimizer: OptimizerSpec, header: list, per_timestep: bool = False) -> str:
    neurons = _all_neurons(entries)
    # A leaky integrator (a readout) is never the default neuron: the spiking settings a default carries
    # cannot be written beside `type: li`.
    neurons = [n for n in neurons if n.type != "li"]
    if neurons:
        counts = Counter(_neuron_key(n) for n in neurons)
        common = max(counts.values())
        default = next(n for n in neurons if counts[_neuron_key(n)] == common)
    else:
        default = NeuronSpec()
    for entry in (e for e in _every_entry(entries) if e.kind == "attention"):
        if _neuron_key(entry.neuron) != _neuron_key(default):
            raise ExportError(entry.source, "attention", "its neurons differ from the network's most common neuron, "
                              "which the profile makes its default; a profile's attention runs the default neuron",
                              "give the attention's neurons the setting of the network's other neurons")
    lines = [f"# {line}" if line else "#" for line in header]
    lines.append(f"name: {_scalar(name)}")
    frames = ", perTimestep: true" if per_timestep else ""
    if len(input_shape) == 1:  # a sequence: one feature vector per sample (per timestep with perTimestep)
        lines.append(f"input: {{features: {input_shape[0]}{frames}}}")
    else:
        c, h, w = input_shape
        lines.append(f"input: {{channels: {c}, height: {h}, width: {w}{frames}}}")
    lines.append(f"timesteps: {timesteps}")
    lines.append(f"batch: {batch}")
    lines.append(f"dtype: {dtype}")
    lines.append(f"neuron: {_flow(_neuron_fields(default, None))}")
    opt = {"type": optimizer.type, "learningRate": optimizer.learning_rate}
    if optimizer.type == "sgd":
        opt["momentum"] = optimizer.momentum
    else:
        opt.update(beta1=optimizer.beta1, beta2=optimizer.beta2, epsilon=optimizer.epsilon)
    if optimizer.weight_decay:
        opt["weightDecay"] = optimizer.weight_decay
    lines.append(f"optimizer: {_flow(opt)}")
    lines.append("layers:")
    _write_entries(lines, entries, 2, default)
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Checking the text against the trace


def _check_shapes(entries: list, layers: list, where: str) -> None:
    if len(entries) != len(layers):  # pragma: no cover - the writer writes one layer per entry
        raise AssertionError(f"{where}: {len(entries)} exported layers, {len(layers)} read back")
    for entry, layer in zip(entries, layers):
        if tuple(layer.output_shape) != tuple(entry.shape):
            raise AssertionError(f"layer '{layer.path}': the profile infers {layer.output_shape}, the trace gave "
                                 f"{entry.shape}")
        if entry.kind == "residual":
            _check_shapes(entry.main, layer.main, layer.path)
            _check_shapes(entry.shortcut, layer.shortcut, layer.path)
        if entry.kind == "branches":
            for index, (exported, built) in enumerate(zip(entry.paths, layer.paths)):
                _check_shapes(exported, built, f"{layer.path}/path{index}")
        if entry.kind == "reversible":
            for block in layer.blocks:
                _check_shapes(entry.main, block.f, block.path)
                _check_shapes(entry.shortcut or entry.main, block.g, block.path)


# ----------------------------------------------------------------------------------------------
# The entry point


def _input_shape(example_input) -> tuple:
    """One sample's shape: (C, H, W) for images, (N,) for a sequence of N features per timestep.

    A shape is given as (C, H, W) or (N,) (an int N too). A tensor's last three dimensions are C, H, W when it
    has 3 to 5 ([C, H, W], [B, C, H, W], [T, B, C, H, W]); one of 1 or 2 dimensions ([N], [B, N]) is a
    sequence's (a [T, B, N] tensor would read as one image: give its shape (N,) and timesteps=, batch=)."""
    if isinstance(example_input, torch.Tensor):
        shape = tuple(example_input.shape)
        sample = shape[-3:] if len(shape) in (3, 4, 5) else shape[-1:] if len(shape) in (1, 2) else None
    else:
        try:
            shape = (int(example_input),) if isinstance(example_input, int) else tuple(int(d) for d in example_input)
        except (TypeError, ValueError):
            shape = ()
        sample = shape if len(shape) in (1, 3) else None
    if sample is None or min(sample) < 1:
        raise ExportError("", "", f"the example input {list(shape)} is neither images nor a sequence; a profile's "
                          "input is channels x height x width, or N features per timestep",
                          "give C x H x W (e.g. 3x32x32) or N (e.g. 700, a sequence [T, B, 700])")
    return sample


def export_profile(model: nn.Module, example_input, timesteps: Optional[int] = None, batch: Optional[int] = None,
                   optimizer=None, dtype: Optional[str] = None, name: Optional[str] = None,
                   output: Optional[str] = None, source: Optional[str] = None, input_per_timestep: bool = False,
                   entries_out: Optional[list] = None) -> str:
    """The profile text of `model` (and written atomically to `output` when given).

    `example_input`: a tensor whose last three dimensions are C, H, W ([T, B, C, H, W], [B, C, H, W] or
    [C, H, W]), or the shape (C, H, W); for a sequence input ([T, B, N], e.g. SHD's 700 channels) the shape
    (N,), or a tensor [N] or [B, N]. `timesteps` and `batch`: the run's T and batch; by default the
    example tensor's (T of a 5-dimensional one, B of a 4- or 5-dimensional one or of a [B, N] one), else 4
    and 16. `dtype`: float32, or float16 / bfloat16 for a run under torch.autocast; by default a half
    example tensor's, else float32. `optimizer`: the torch.optim.SGD / Adam you train with, a dict ({"type": "sgd", "lr":
    0.1, "momentum": 0.9}) or None (SGD, lr 0.1, momentum 0.9). `input_per_timestep`: the model is fed
    event frames ([T, B, C, H, W], another frame each timestep) or a sequence ([T, B, N], another feature
    vector each timestep) rather than one sample repeated over T; the module cannot tell, so the caller
    says it. Raises `ExportError` for anything the profile language cannot express. `entries_out`, when
    given, receives the exported entries (with them `snnmem-torch check` maps the profile's layers back to
    the model's modules).
    """
    _, functional, _, _, _ = _sj()
    if isinstance(example_input, torch.Tensor):
        dims = tuple(example_input.shape)
        if timesteps is None and len(dims) == 5:
            timesteps = dims[0]
        if batch is None and len(dims) in (4, 5):
            batch = dims[-4]
        if batch is None and len(dims) == 2:
            batch = dims[0]
        if dtype is None:
            dtype = {torch.float16: "float16", torch.bfloat16: "bfloat16"}.get(example_input.dtype)
    timesteps, batch, dtype = timesteps or 4, batch or 16, dtype or "float32"
    if dtype not in ("float32", "float16", "bfloat16"):
        raise ExportError("", "", f"dtype {dtype}", "use float32, float16 or bfloat16")
    for pname, p in model.named_parameters():
        if p.dtype != torch.float32:
            raise ExportError(pname, str(p.dtype), "a profile's model holds float32 parameters (float16/bfloat16 "
                              "are autocast runs over them)", "keep the model float32 and pass dtype=")
        if not p.requires_grad:
            raise ExportError(pname, "frozen parameter", "requires_grad=False; a profile trains every parameter",
                              "unfreeze it for the export")
    opt = _optimizer_spec(optimizer, model)
    sample = _input_shape(example_input)
    from .export_trevsnn import is_builders_trev_network, trev_entries
    from .trevsnn import TRevNet
    trev_network = is_builders_trev_network(model)
    for mpath, m in model.named_modules():
        if isinstance(m, TRevNet) and not trev_network:
            raise ExportError(mpath, _type_name(m), "a T-RevSNN network runs one single-step column per timestep, "
                              "each with weights of its own; the export reads multi-step modules only, and a T-RevSNN "
                              "network only as the measure package builds it (snnmem_torch.build)",
                              "write its `trevsnn:` construct by hand (profiles/trevsnn-cifar.yaml)")

    net = copy.deepcopy(model).cpu().train()
    from .export_recurrent import recurrence_neurons
    inside = recurrence_neurons(model)  # single-step by design: one timestep per call of their container
    single_step = any(getattr(m, "step_mode", "m") == "s" for m in model.modules() if id(m) not in inside)
    if trev_network:
        if len(sample) != 3:
            raise ExportError("", _type_name(model), f"a T-RevSNN network's stem takes images, not a sequence of "
                              f"{sample[0]} features", "give the input as C x H x W")
        c, h, w = sample
        # The stem runs once on the images and each column is one timestep: read, not traced.
        entries = trev_entries(net, (c, h, w), timesteps, batch)
        header = [f"exported by snnmem-torch export from {source or _type_name(model)}",
                  "a T-RevSNN network as the measure package builds it: the stem and the columns read module by module",
                  "plan it: snnmem plan THIS_FILE --runtime pytorch-cpu (or pytorch-cuda)"]
        return _finish(entries, header, model, name, sample, timesteps, batch, dtype, opt, optimizer, output,
                       input_per_timestep, entries_out)
    functional.set_step_mode(net, "m")
    from .export_recurrent import keep_inner_neurons_single_step
    keep_inner_neurons_single_step(net)
    functional.reset_net(net)
    try:
        graph = _Tracer().trace(net)
    except Exception as error:  # noqa: BLE001 - torch.fx's own message says what it could not trace
        raise ExportError("", _type_name(model), f"torch.fx cannot trace forward: {error}",
                          "keep data-dependent Python control flow out of forward") from None
    gm = fx.GraphModule(net, graph)
    try:
        with torch.no_grad():
            _Shapes(gm).run(torch.rand(_TRACE_T, _TRACE_B, *sample))
    finally:
        functional.reset_net(net)
    reader = _Reader(gm, timesteps, batch, sample)
    entries, last = reader.read()
    if not entries:
        raise ExportError("", _type_name(model), "no layer was found", "export a network of layers")
    _unique_names(entries)

    header = [f"exported by snnmem-torch export from {source or _type_name(model)}",
              f"traced with torch.fx in SpikingJelly's multi-step mode ([T, B, ...])"
              + ("; the model was built single-step ('s') and is planned multi-step" if single_step else ""),
              "plan it: snnmem plan THIS_FILE --runtime pytorch-cpu (or pytorch-cuda)"]
    return _finish(entries, header, model, name, sample, timesteps, batch, dtype, opt, optimizer, output,
                   input_per_timestep, entries_out)


def _finish(entries: list, header: list, model: nn.Module, name, sample: tuple, timesteps: int, batch: int, dtype: str,
            opt, optimizer, output, input_per_timestep: bool, entries_out) -> str:
    """Writes the profile text, reads it back, checks every shape and writes it (atomically) when asked."""
    if optimizer is None:
        # Said in the file: the optimizer's state is part of the plan, and nothing named it.
        header.append("optimizer: none given, so the profile default (SGD, momentum 0.9) is written; "
                      "pass --optimizer / optimizer= to plan yours")
    text = profile_text(entries, name or type(model).__name__, sample, timesteps, batch, dtype, opt, header,
                        per_timestep=input_per_timestep)
    profile = parse(text, output or "exported.yaml")  # the loader's errors name the line of this text
    _check_shapes(entries, profile.layers, "layers")
    if entries_out is not None:
        entries_out.extend(entries)
    if output:
        from .output import write_atomic
        write_atomic(output, text)
    return text


def load_factory(spec: str, kwargs: dict):
    """MODULE:FACTORY (a module name or a .py file, and a callable or a module object in it)."""
    import importlib
    import importlib.util
    import os
    import sys

    if ":" not in spec:
        raise ValueError(f"'{spec}' is not MODULE:FACTORY (e.g. mymodels:make_net or net.py:Net)")
    module_name, attr = spec.rsplit(":", 1)
    if module_name.endswith(".py") or os.sep in module_name:
        path = os.path.abspath(module_name)
        if not os.path.exists(path):
            raise ValueError(f"no such file {module_name}")
        name = os.path.splitext(os.path.basename(path))[0]
        loaded = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(loaded)
        sys.modules[name] = module
        loaded.loader.exec_module(module)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ValueError(f"{module_name} has no '{attr}'")
        target = getattr(target, part)
    if isinstance(target, nn.Module):
        if kwargs:
            raise ValueError(f"{spec} is a module object; --kwarg applies to a factory")
        return target
    if not callable(target):
        raise ValueError(f"{spec} is neither a callable nor an nn.Module")
    made = target(**kwargs)
    if not isinstance(made, nn.Module):
        raise ValueError(f"{spec}() gave {type(made).__name__}, not an nn.Module")
    return made


def parse_kwarg(text: str) -> tuple:
    """NAME=VALUE: a Python literal, a dotted import path (spikingjelly.activation_based.neuron.LIFNode), one
    called without arguments (spikingjelly.activation_based.surrogate.ATan()), or else a plain word (cnf=ADD)."""
    import ast
    import importlib

    if "=" not in text:
        raise ValueError(f"'{text}' is not NAME=VALUE")
    key, value = text.split("=", 1)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        pass
    if "." not in value and ":" not in value:
        return key, value  # a plain word: a string (cnf=ADD)
    call = value.endswith("()")
    module_name, _, attr = value[:-2 if call else None].replace(":", ".").rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"{key}={value}: neither a Python literal nor an importable name") from None
    return key, found() if call else found
