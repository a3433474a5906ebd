"""What autograd keeps for backward, per profile layer.

Every tensor an op saves goes through `torch.autograd.graph.saved_tensors_hooks`; the pack hook
records it with the layer whose module is running (the tracker's stack). Storages are
deduplicated: a storage saved by several ops counts once, for the first layer that saved it,
with bytes = the storage's nbytes. Storages of parameters, buffers and the input batch are
listed with their role but not counted (they are live anyway).

Each saved tensor is named by the autograd node and field that hold it
("ConvolutionBackward0._saved_input", "_SurrogateSpikeBackward.saved_tensors[0]"), found by
walking the graph from the loss and from every neuron's state v (the last timestep's reset ops
hang from v and are reachable from nothing else), matched to the pack
calls by object identity (the unpack hook hands back the very tensor it packed).

Checkpoint: inside a checkpointed segment the checkpoint's own hooks take the saved tensors
(the recomputation makes them again in backward), so what is kept is what checkpoint saves
itself, the segment's inputs (x_seg and the neuron states at its start), plus what the loss
saves. Those inputs are named "checkpoint.saved_args[i]" and attributed to layer "input" (x_seg)
or to the neuron whose state they are. The graph walk never reads a checkpointed node's saved
fields (that would start a recomputation): it reads only nodes the loss created.

RevSNN: a reversible stage's function keeps its output in its context, not through
save_for_backward, so it reports it with `keep` ("RevSNNStageBackward.ctx.y", layer = the stage);
what its recomputations in backward save is not recorded (phase "recompute").

Mixed precision: a tensor autocast made from a parameter (the float16/bfloat16 copy of a conv or
linear weight, saved by its node) is a new storage, counted as an activation of its layer, and
marked `castOf` = the parameter's name. Tensors saved in backward (the GradScaler's `loss * scale`
keeps the scaler's own scale tensor) are not recorded: the recorder is about what the forward keeps.

The recorder holds a strong reference to every saved tensor, so no storage can be freed and its
address reused while it records; it runs in a step of its own, not in the measured one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

DTYPE_NAMES = {
    torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float64: "float64",
    torch.int64: "int64", torch.int32: "int32", torch.int16: "int16", torch.int8: "int8", torch.uint8: "uint8",
    torch.bool: "bool",
}


def dtype_name(dtype: torch.dtype) -> str:
    return DTYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


def storage_key(t: torch.Tensor) -> tuple:
    s = t.untyped_storage()
    return (t.device.type, t.device.index, s.data_ptr())


def storage_bytes(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes()


@dataclass
class PackRecord:
    index: int
    group: int
    layer: str
    tensor: torch.Tensor
    name: Optional[str] = None
    override_name: Optional[str] = None


@dataclass
class GroupResult:
    group: int
    saved_bytes: int
    by_layer: dict            # layer -> list of tensor dicts
    neuron_state: list        # [{layer, bytes}]


@dataclass
class SavedTensorRecorder:
    trainer: object
    records: list = field(default_factory=list)
    groups: list = field(default_factory=list)
    wants_sequence_marks: bool = True
    _group: int = 0

    def __post_init__(self):
        t = self.trainer
        self.parameter_keys = {storage_key(p) for p in t.net.parameters()}
        self.buffer_keys = {storage_key(b) for b in t.net.buffers()}
        self.input_keys = {storage_key(t.x), storage_key(t.labels)}
        # Parameters by profile layer path ("conv1.weight"), for naming autocast's copies of them.
        self.parameter_names = {}
        for path, module in t.net.layers.items():
            if module is not None:
                for pname, p in module.named_parameters(recurse=False):
                    self.parameter_names.setdefault(id(p), f"{path}.{pname}")
        scaler = getattr(t, "scaler", None)
        self.scaler_keys = set()
        if scaler is not None:
            self.scaler_keys = {storage_key(x) for x in (scaler._scale, scaler._growth_tracker)
                                if isinstance(x, torch.Tensor)}

    # -- hooks ---------------------------------------------------------------------------------

    def pack(self, tensor: torch.Tensor):
        trainer = self.trainer
        if trainer.tracker.phase in ("backward", "recompute"):
            # e.g. GradScaler.scale's product, or what a RevSNN recomputation saves: backward's own.
            return tensor
        layer = trainer.tracker.current or "(outside)"
        override = None
        if trainer.checkpoint_args is not None and trainer.tracker.current is None:
            for position, (path, arg) in enumerate(trainer.checkpoint_args):
                if arg is tensor:
                    layer, override = path, f"checkpoint.saved_args[{position}]"
                    break
        self.records.append(PackRecord(len(self.records), self._group, layer, tensor, override_name=override))
        return tensor

    def keep(self, tensor: torch.Tensor, layer: str, name: str) -> None:
        """A tensor kept for backward outside save_for_backward (RevSNN's ctx.y), reported by its keeper."""
        self.records.append(PackRecord(len(self.records), self._group, layer, tensor, override_name=name))

    @staticmethod
    def unpack(tensor):
        return tensor

    def hooks(self):
        return torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)

    # -- observer ------------------------------------------------------------------------------

    def forward_done(self, trainer, loss: torch.Tensor, group: int) -> None:
        """Called after a forward, before its backward: names this group's tensors, sums them."""
        self._group = group
        records = [r for r in self.records if r.group == group]
        self._name(records, loss)
        self.groups.append(self._summarize(group, records))
        self._group = group + 1
        for record in records:
            # The graph holds what it needs; the group is summed, so its storages may be reused now.
            record.tensor = None

    # -- naming --------------------------------------------------------------------------------

    def _name(self, records: list, loss: torch.Tensor) -> None:
        trainer = self.trainer
        roots = [loss.grad_fn]
        only_after = None
        if trainer.strategy == "checkpoint":
            only_after = trainer.loss_sequence_start
        else:
            for _, module in trainer.neurons:
                v = module.v
                if isinstance(v, torch.Tensor) and v.grad_fn is not None:
                    roots.append(v.grad_fn)
        holders: dict = {}  # storage key -> [(sequence nr, field order, "Node.field")]
        by_identity: dict = {}  # id(tensor) -> ["Node.field"]: the unpack hook returns the packed object
        seen = set()
        stack = [r for r in roots if r is not None]
        while stack:
            node = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            sequence = node._sequence_nr() if hasattr(node, "_sequence_nr") else -1
            if only_after is not None and sequence < only_after:
                continue
            for order, (field_name, value) in enumerate(_saved_fields(node)):
                values = value if isinstance(value, (list, tuple)) else [value]
                for i, item in enumerate(values):
                    if isinstance(item, torch.Tensor):
                        label = f"{node.name()}.{field_name}" + (f"[{i}]" if isinstance(value, (list, tuple)) else "")
                        holders.setdefault(storage_key(item), []).append((sequence, order, label))
                        by_identity.setdefault(id(item), []).append((sequence, order, label))
            for next_node, _ in node.next_functions:
                if next_node is not None:
                    stack.append(next_node)
        for labels in by_identity.values():
            labels.sort()
        unnamed_by_storage: dict = {}
        for record in records:
            if record.override_name is not None:
                record.name = record.override_name
                continue
            labels = by_identity.get(id(record.tensor))
            if labels:
                record.name = labels.pop(0)[2]
            else:
                unnamed_by_storage.setdefault(storage_key(record.tensor), []).append(record)
        for key, packs in unnamed_by_storage.items():
            # No object identity (a hook-less path): pair packs and holders of the storage in creation order.
            names = sorted(holders.get(key, []))
            if len(names) == len(packs):
                for r, (_, _, label) in zip(packs, names):
                    r.name = label
            else:
                for r in packs:
                    r.name = names[0][2] if names else "(not reachable from the loss)"

    # -- summary -------------------------------------------------------------------------------

    def role(self, key: tuple) -> str:
        if key in self.parameter_keys:
            return "parameter"
        if key in self.buffer_keys:
            return "buffer"
        if key in self.input_keys:
            return "input"
        if key in self.scaler_keys:
            return "gradScaler"
        return "activation"

    def cast_of(self, t: torch.Tensor) -> Optional[str]:
        """The parameter `t` is an autocast copy of (its node is a _to_copy of the leaf), or None."""
        node = t.grad_fn
        while node is not None and node.name() in _VIEW_NODES and node.next_functions:
            node = node.next_functions[0][0]  # a view of the copy (linear saves weight.t())
        if node is None or node.name() != "ToCopyBackward0":
            return None
        for next_node, _ in node.next_functions:
            variable = getattr(next_node, "variable", None)
            if variable is not None and id(variable) in self.parameter_names:
                return self.parameter_names[id(variable)]
        return None

    def _summarize(self, group: int, records: list) -> GroupResult:
        first: dict = {}
        by_layer: dict = {}
        total = 0
        for record in records:
            key = storage_key(record.tensor)
            t = record.tensor
            if key in first:
                first[key]["alsoSavedBy"].append({"layer": record.layer, "name": record.name})
                continue
            nbytes = storage_bytes(t)
            role = self.role(key)
            entry = {"name": record.name, "shape": list(t.shape), "dtype": dtype_name(t.dtype), "bytes": nbytes,
                     "role": role, "alsoSavedBy": []}
            cast = self.cast_of(t) if t.dtype != torch.float32 else None
            if cast is not None:
                entry["castOf"] = cast
            first[key] = entry
            by_layer.setdefault(record.layer, []).append(entry)
            if role == "activation":
                total += nbytes
        neuron_state = []
        for path, module in self.trainer.neurons:
            v = module.v
            neuron_state.append({"layer": path, "bytes": storage_bytes(v) if isinstance(v, torch.Tensor) else 0})
        return GroupResult(group, total, by_layer, neuron_state)

    def release(self) -> None:
        self.records = []


_VIEW_NODES = ("TBackward0", "TransposeBackward0", "PermuteBackward0", "ViewBackward0", "AliasBackward0")


def _saved_fields(node):
    """(field, value) of a node's saved tensors, without unpacking anything but them."""
    out = []
    for attr in dir(node):
        if attr.startswith("_saved_"):
            try:
                out.append((attr, getattr(node, attr)))
            except RuntimeError:
                pass
    if not out and hasattr(node, "saved_tensors"):
        # A Python autograd.Function (e.g. SpikingJelly's _SurrogateSpike) keeps them in its ctx.
        try:
            out.append(("saved_tensors", tuple(node.saved_tensors)))
        except RuntimeError:
            pass
    return out


def record_saved(trainer) -> SavedTensorRecorder:
    """Runs one step of `trainer` recording what it saves (group = timestep for sltt, else 0)."""
    recorder = SavedTensorRecorder(trainer)
    trainer.observer = recorder
    try:
        with recorder.hooks():
            trainer.step()
    finally:
        trainer.observer = None
    return recorder
