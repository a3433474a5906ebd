"""`branches`: paths applied to one input and joined by add, concat, and (a * b) or iand ((1 - a) * b).

The loader half mirrors Swift's `BranchesBuilder.swift` (the same checks and messages); the module
half is the PyTorch block `build.py` makes, whose ops are what `Sources/Planner/BranchesWalk.swift`
declares for the PyTorch runtimes:

  add     acc = acc + path(x) as each path's output arrives (out of place; nothing kept)
  concat  torch.cat of every path's output along channels (dim -3); nothing kept, views in backward
  and     b * a, SEW's `x * y` with x the identity: MulBackward0 keeps both
  iand    b * (1.0 - a), SEW's `x * (1.0 - y)`: the rsub's result and b are kept
"""

from __future__ import annotations

import torch
import torch.nn as nn
import yaml

JOINS = ["add", "concat", "and", "iand"]
KEYS = ["join", "paths", "name"]


def build_branches(builder, p, inp: tuple, path: str, location: tuple):
    """(join, paths, output shape) of a `branches` entry, or the loader's ProfileError."""
    from .profile import _loc, _shape_text

    joins = ", ".join(JOINS)
    if p.value("join") is None:
        raise p.error(f"{p.context} is missing the required key 'join'", f"add `join: add  (one of {joins})`")
    join = p.choice("join", JOINS, "add")
    paths_node = p.require("paths", "[[], [{conv: {out: 16, kernel: 3, padding: 1}}, batchnorm, neuron]]")
    p.reject_unknown_keys(KEYS)
    items = paths_node.value if isinstance(paths_node, yaml.SequenceNode) else None
    if items is None or len(items) < 2:
        raise builder.fail("`paths` of a branches block must be a list of at least two paths (each a list of layers, [] "
                           "for the identity)", "write `paths: [[], [{conv: {out: 16, kernel: 3, padding: 1}}]]`",
                           path, _loc(paths_node))
    if join in ("and", "iand") and len(items) != 2:
        formula = "a * b" if join == "and" else "(1 - a) * b"
        raise builder.fail(f"join `{join}` combines exactly two paths ({formula}), found {len(items)}",
                           "nest branches blocks to combine more paths", path, _loc(paths_node))
    paths, outputs = [], []
    for index, item in enumerate(items):
        layers, out = builder.build_list(item, inp, f"{path}/path{index}", f"branches path {index}")
        paths.append(layers)
        outputs.append(tuple(out))
    if not any(paths):
        raise builder.fail("every path of the branches block is empty, so it joins its input with itself",
                           "give at least one path a layer", path, _loc(paths_node))
    first = outputs[0]
    if join != "concat":
        for index, shape in enumerate(outputs[1:], start=1):
            if shape != first:
                raise builder.fail(f"path {index} gives {_shape_text(shape)} but path 0 gives {_shape_text(first)}; "
                                   f"`{join}` needs equal shapes",
                                   f"make every path give {_shape_text(first)} (a 1x1 conv with stride and batchnorm "
                                   "maps a shortcut)", f"{path}/path{index}", _loc(items[index]))
        return join, paths, first
    channels = 0
    for index, shape in enumerate(outputs):
        if len(shape) != 3 or len(first) != 3 or shape[1:] != first[1:]:
            raise builder.fail(f"path {index} gives {_shape_text(shape)}; `concat` joins [channels, height, width] "
                               f"outputs of one resolution (path 0 gives {_shape_text(first)})",
                               "give every path the same height and width (and concatenate before flattening)",
                               f"{path}/path{index}", _loc(items[index]))
        channels += shape[0]
    if channels > 1 << 24:
        raise builder.fail(f"the concatenation has {channels} channels, more than 16,777,216", "use fewer channels",
                           path, _loc(items[0]))
    return join, paths, (channels, first[1], first[2])


def refuse_inside_reversible(builder, layers: list) -> None:
    """Swift's `refuseBranches`: a reversible stage inverts its blocks layer by layer."""
    for layer in layers:
        if layer.kind == "branches":
            raise builder.fail("a branches block inside reversible `f` or `g` cannot be reconstructed by the reversible "
                               "stage's inverse", "move the branches block out of the reversible stage", layer.path,
                               (layer.line, layer.column))
        if layer.kind == "residual":
            refuse_inside_reversible(builder, layer.main + layer.shortcut)


class Branches(nn.Module):
    """Paths on one input, joined; an empty path (nn.Sequential()) is the identity."""

    def __init__(self, join: str, paths: list):
        super().__init__()
        self.join = join
        self.paths = nn.ModuleList(paths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.join == "add":
            acc = self.paths[0](x)
            for path in self.paths[1:]:
                acc = acc + path(x)
            return acc
        if self.join == "concat":
            return torch.cat([path(x) for path in self.paths], dim=-3)
        a = self.paths[0](x)
        b = self.paths[1](x)
        if self.join == "and":
            return b * a
        return b * (1.0 - a)
