"""Reads a profile YAML file as the Swift loader does (Sources/Profiles/ProfileLoader.swift and
LayerBuilder.swift): the same keys, defaults, default names, layer paths and inferred shapes.

Scalars are read from the YAML text as the Swift loader reads them (Yams gives strings; Swift's
`Int(_:)`, `Double(_:)` and `Bool(_:)` convert them), not with PyYAML's YAML 1.1 typing, so that
`yes` is not a boolean here either. A reversible stage is read with its blocks (each block's `f` and
`g` layer lists, paths `<stage>/block<i>/f/...` and `.../g/...`, `g` defaulting to `f`). A `trevsnn:`
network is read with its levels' down, up and block layers and its head (`TRevSpec`), as Swift's
`buildTRev` makes them (paths without the column prefix, which the builder adds per column). The
layers only T-RevSNN uses (upsample, scale, the turn-off neuron) are read anywhere, with their paths
and shapes, so that the builder can refuse them by name outside a `trevsnn:` network.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from dataclasses import dataclass, field
from typing import Optional

import yaml

from .errors import ProfileError

TOP_LEVEL_KEYS = ["name", "description", "input", "timesteps", "batch", "dtype", "neuron", "optimizer",
                  "classes", "layers"]
KINDS = ["conv", "batchnorm", "neuron", "avgpool", "maxpool", "globalavgpool", "flatten", "linear",
         "upsample", "scale", "residual", "branches", "repeat", "reversible", "trevsnn", "convtranspose", "conv1d",
         "tokens", "tokenmean", "attention", "layernorm", "recurrent", "dropout", "adaptiveavgpool", "voting"]
ALLOWED_KEYS = {
    "conv": ["out", "in", "kernel", "stride", "padding", "groups", "bias", "name"],
    "batchnorm": ["features", "name"],
    "neuron": ["type", "tau", "threshold", "vReset", "reset", "detachReset", "surrogate", "decayInput", "rho", "beta", "name"],
    "avgpool": ["kernel", "stride", "padding", "name"],
    "maxpool": ["kernel", "stride", "padding", "name"],
    "globalavgpool": ["name"],
    "flatten": ["name"],
    "linear": ["out", "in", "bias", "name"],
    "upsample": ["factor", "name"],
    "scale": ["initial", "name"],
    "residual": ["main", "shortcut", "name"],
    "branches": ["join", "paths", "name"],
    "convtranspose": ["out", "in", "kernel", "stride", "padding", "bias", "name"],
    "repeat": ["times", "layers", "name"],
    "reversible": ["blocks", "f", "g", "name"],
    "trevsnn": ["levels", "kernel", "expansion", "alpha", "layerScale", "classes", "neuron", "name"],
    "dropout": ["p", "name"],
    "adaptiveavgpool": ["output", "name"],
    "voting": ["size", "name"],
    "conv1d": ["out", "in", "kernel", "stride", "padding", "groups", "bias", "name"],
    "tokens": ["name"],
    "tokenmean": ["name"],
    "attention": ["kind", "heads", "scale", "threshold", "name"],
    "layernorm": ["eps", "affine", "name"],
    "recurrent": ["out", "in", "bias", "neuron", "name"],
}
ATTENTION_KINDS = ["ssa", "sdsa"]
DTYPES = ["float32", "float16", "bfloat16", "int32", "int64"]
NEURON_TYPES = ["lif", "if", "turnoff", "plif", "li", "alif"]
# Keys that shape a spike: refused beside `type: li` (a leaky integrator never fires) rather than ignored.
SPIKE_SETTING_KEYS = ["threshold", "vReset", "reset", "detachReset", "surrogate"]
RESETS = ["hard", "soft"]
SURROGATES = ["atan", "sigmoid"]
OPTIMIZERS = ["sgd", "adam"]


# ----------------------------------------------------------------------------------------------
# The profile's model


@dataclass
class NeuronSpec:
    type: str = "lif"
    tau: float = 2.0
    threshold: float = 1.0
    v_reset: float = 0.0
    reset: str = "hard"
    detach_reset: bool = False
    surrogate: str = "atan"
    surrogate_alpha: float = 2.0
    decay_input: bool = True  # plif only (a profile's LIF always decays its input)
    rho: float = 0.9  # alif only: the adaptation's decay per timestep (Bellec et al. 2018)
    beta: float = 1.8  # alif only: the threshold's rise per unit of adaptation

    def copy(self) -> "NeuronSpec":
        return NeuronSpec(**self.__dict__)


@dataclass
class OptimizerSpec:
    type: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8


@dataclass
class Layer:
    """One layer with its inferred per-sample, per-timestep shapes (as Swift's `Layer`)."""

    name: str
    path: str
    kind: str  # conv, batchnorm, neuron, avgpool, maxpool, globalavgpool, flatten, linear, upsample,
    #            scale, residual, reversible, trevsnn, conv1d, tokens, tokenmean, attention
    input_shape: tuple
    output_shape: tuple
    line: int = 1
    column: int = 1
    params: dict = field(default_factory=dict)
    neuron: Optional[NeuronSpec] = None
    main: list = field(default_factory=list)      # residual
    shortcut: list = field(default_factory=list)  # residual
    paths: list = field(default_factory=list)     # branches: [[Layer]] (branches.py)
    join: str = ""                                # branches: add, concat, and, iand
    blocks: list = field(default_factory=list)    # reversible: [ReversibleBlock]
    trev: Optional["TRevSpec"] = None             # trevsnn
    parts: list = field(default_factory=list)     # attention: q/k/v conv1d, batchnorm, neuron; attn_lif; proj


@dataclass
class TRevLevel:
    """One level of a T-RevSNN column (Swift's `TRevNetwork.Level`); its layers' paths carry no column
    prefix (the builder adds "col<t>/" per column, as Swift's `ParameterLayout.columnPrefix`)."""

    path: str
    channels: int
    state_shape: tuple
    down: list   # neuron0, conv1 (3x3 stride 2, or 1x1), batchnorm2: from the level below, same column
    up: list     # neuron0, conv1 (1x1), batchnorm2, upsample3: from the level above, previous column ([] at the top)
    blocks: list  # residual ConvNeXt-style blocks (main: neuron0, dwconv1, pwconv2, neuron3, pwconv4, scale5)


@dataclass
class TRevSpec:
    """A `trevsnn:` network after the stem (Swift's `TRevNetwork`): one column per timestep, each with its
    own weights; c[l][t] = F_l(c[l-1][t], c[l+1][t-1]) + alpha_l * c[l][t-1], c[l][-1] = 0."""

    levels: list       # [TRevLevel]
    kernel: int
    expansion: int
    alpha_init: float
    head: list         # neuron0, avgpool1 (the whole top map), flatten2, linear3: on each column's top level
    classes: int


@dataclass
class ReversibleBlock:
    """One block of a reversible stage: Y1 = X1 + F(X2), Y2 = X2 + G(Y1) on channel halves."""

    path: str
    f: list
    g: list


@dataclass
class Profile:
    name: str
    source_path: str
    description: str
    input_shape: tuple
    timesteps: int
    batch: int
    dtype: str
    neuron: NeuronSpec
    optimizer: OptimizerSpec
    layers: list
    classes: int
    sha256: str = ""
    input_per_timestep: bool = False  # event frames: the batch is [T, B, C, H, W]

    @property
    def all_layers(self) -> list:
        """Every layer in forward order, nested ones included (parents first), as Swift's allLayers."""
        out = []

        def visit(layers):
            for layer in layers:
                out.append(layer)
                if layer.kind == "residual":
                    visit(layer.main)
                    visit(layer.shortcut)
                elif layer.kind == "branches":
                    for path in layer.paths:
                        visit(path)
                elif layer.kind == "reversible":
                    for block in layer.blocks:
                        visit(block.f)
                        visit(block.g)
                elif layer.kind == "attention":
                    visit(layer.parts)

        visit(self.layers)
        return out


# ----------------------------------------------------------------------------------------------
# Scalars as Swift reads them

_INT = re.compile(r"^[+-]?[0-9]+$")
_DOUBLE = re.compile(r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|inf|infinity|nan)$", re.IGNORECASE)
_HEX_DOUBLE = re.compile(r"^[+-]?0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?[0-9]+)?$")


def swift_int(text: str) -> Optional[int]:
    return int(text) if _INT.match(text) else None


def swift_double(text: str) -> Optional[float]:
    if _DOUBLE.match(text):
        return float(text)
    if _HEX_DOUBLE.match(text):
        t = text if "p" in text.lower() else text + "p0"
        return float.fromhex(t)
    return None


def swift_bool(text: str) -> Optional[bool]:
    return {"true": True, "false": False}.get(text)


def edit_distance(a: str, b: str) -> int:
    if not a:
        return len(b)
    if not b:
        return len(a)
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (0 if a[i - 1] == b[j - 1] else 1))
        previous = current
    return previous[len(b)]


def _loc(node) -> tuple:
    if node is None or getattr(node, "start_mark", None) is None:
        return (1, 1)
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _kind_name(node) -> str:
    if isinstance(node, yaml.ScalarNode):
        return "a single value"
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "an alias"


def _display(node) -> str:
    return node.value if isinstance(node, yaml.ScalarNode) else _kind_name(node)


def _is_null_scalar(node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")


class _Mapping:
    """A YAML mapping read with positions; the Swift `YAMLMapping`."""

    def __init__(self, node, file: str, layer_path: Optional[str], context: str):
        if not isinstance(node, yaml.MappingNode):
            line, col = _loc(node)
            raise ProfileError(file, f"{context} must be a mapping of keys to values, found {_kind_name(node)}",
                               "write it as `key: value` lines (or `{key: value, ...}`)", line, col, layer_path)
        self.node = node
        self.file = file
        self.layer_path = layer_path
        self.context = context
        self.used: set = set()
        self.pairs = []
        seen = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                line, col = _loc(key)
                raise ProfileError(file, f"a key in {context} is not a plain name", "use plain names as keys",
                                   line, col, layer_path)
            if key.value in seen:
                line, col = _loc(key)
                raise ProfileError(file, f"the key '{key.value}' appears twice in one mapping", "keep one of each key",
                                   line, col, None)
            seen[key.value] = True
            self.pairs.append((key.value, key, value))

    def error(self, problem: str, fix: str, at=None) -> ProfileError:
        line, col = _loc(at if at is not None else self.node)
        return ProfileError(self.file, problem, fix, line, col, self.layer_path)

    def value(self, key: str):
        for name, _, value in self.pairs:
            if name == key:
                self.used.add(key)
                return value
        return None

    def require(self, key: str, example: str):
        node = self.value(key)
        if node is None:
            raise self.error(f"{self.context} is missing the required key '{key}'", f"add `{key}: {example}`")
        return node

    def int(self, key: str, default: Optional[int] = None, min_value: int = 1, example: str = "1") -> int:
        node = self.value(key)
        if node is None:
            if default is not None:
                return default
            raise self.error(f"{self.context} is missing the required key '{key}'", f"add `{key}: {example}`")
        return integer(node, key, min_value, self.file, self.layer_path, self.context)

    def double(self, key: str, default: float, value_range: Optional[tuple] = None, positive: bool = False) -> float:
        node = self.value(key)
        if node is None:
            return default
        value = swift_double(node.value) if isinstance(node, yaml.ScalarNode) else None
        if value is None or not math.isfinite(value):
            raise self.error(f"'{key}' in {self.context} must be a number, found '{_display(node)}'",
                             f"write a number such as `{key}: {default}`", node)
        if positive and value <= 0:
            raise self.error(f"'{key}' in {self.context} is {value}, but it must be greater than 0",
                             f"set `{key}` to a positive number such as {default}", node)
        if value_range is not None and not (value_range[0] <= value <= value_range[1]):
            raise self.error(f"'{key}' in {self.context} is {value}, outside {value_range[0]}...{value_range[1]}",
                             f"set `{key}` within {value_range[0]}...{value_range[1]}", node)
        return value

    def bool(self, key: str, default: bool) -> bool:
        node = self.value(key)
        if node is None:
            return default
        value = swift_bool(node.value.lower()) if isinstance(node, yaml.ScalarNode) else None
        if value is None:
            raise self.error(f"'{key}' in {self.context} must be true or false, found '{_display(node)}'",
                             f"write `{key}: true` or `{key}: false`", node)
        return value

    def string(self, key: str, default: Optional[str] = None) -> Optional[str]:
        node = self.value(key)
        if node is None:
            return default
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(f"'{key}' in {self.context} must be a plain value, found {_kind_name(node)}",
                             f"write `{key}: VALUE`", node)
        return node.value

    def choice(self, key: str, options: list, default: str) -> str:
        node = self.value(key)
        if node is None:
            return default
        text = node.value if isinstance(node, yaml.ScalarNode) else _display(node)
        if text.lower() not in options:
            joined = ", ".join(options)
            raise self.error(f"'{key}' in {self.context} is '{text}', which is not one of: {joined}",
                             f"set `{key}` to one of {joined}", node)
        return text.lower()

    def reject_unknown_keys(self, allowed: list) -> None:
        for name, key_node, _ in self.pairs:
            if name not in allowed:
                suggestion = min(allowed, key=lambda a: edit_distance(a, name))
                hint = f" (did you mean '{suggestion}'?)" if edit_distance(suggestion, name) <= 2 else ""
                raise self.error(f"unknown key '{name}' in {self.context}{hint}",
                                 f"use only the keys {', '.join(allowed)}", key_node)


def integer(node, key: str, min_value: int, file: str, layer_path: Optional[str], context: str) -> int:
    value = swift_int(node.value) if isinstance(node, yaml.ScalarNode) else None
    line, col = _loc(node)
    if value is None:
        raise ProfileError(file, f"'{key}' in {context} must be a whole number, found '{_display(node)}'",
                           f"write a whole number such as `{key}: {max(min_value, 1)}`", line, col, layer_path)
    if value < min_value:
        raise ProfileError(file, f"'{key}' in {context} is {value}, but it must be at least {min_value}",
                           f"set `{key}` to {min_value} or more", line, col, layer_path)
    return value


# ----------------------------------------------------------------------------------------------
# Loading


def load(path: str) -> Profile:
    """Loads and checks a profile file; every failure is a `ProfileError`."""
    if not os.path.exists(path):
        raise ProfileError(path, "no such profile file",
                           "check the path; the bundled profiles are in profiles/ (e.g. profiles/cifarnet.yaml)")
    if os.path.isdir(path):
        raise ProfileError(path, "the file cannot be read", "check that it is a readable file, not a folder")
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProfileError(path, "the file is not UTF-8 text", "save the profile as UTF-8 YAML") from None
    profile = parse(text, path)
    profile.sha256 = hashlib.sha256(data).hexdigest()
    return profile


def parse(text: str, file: str) -> Profile:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise ProfileError(file, f"invalid YAML: {error.problem}", "check indentation, colons and brackets at this position",
                           line, col) from None
    except yaml.YAMLError as error:
        raise ProfileError(file, f"the YAML cannot be read ({error})", "check the file's YAML syntax") from None
    if root is None:
        raise ProfileError(file, "the profile is empty", "start from a bundled profile such as profiles/cifarnet.yaml", 1, 1)
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    profile = _parse_root(root, file)
    profile.sha256 = sha
    return profile


def _parse_root(root, file: str) -> Profile:
    top = _Mapping(root, file, None, "the profile")
    fallback = os.path.splitext(os.path.basename(file))[0]
    name = top.string("name", fallback) or fallback
    description = top.string("description", "") or ""
    inp = _Mapping(top.require("input", "{channels: 3, height: 32, width: 32}"), file, None, "input")
    inp.reject_unknown_keys(["channels", "height", "width", "features", "perTimestep"])
    input_shape = _parse_input_shape(inp)
    per_timestep_node = inp.value("perTimestep")
    per_timestep = inp.bool("perTimestep", False)
    timesteps = top.int("timesteps", example="4")
    batch = top.int("batch", example="16")
    dtype = top.choice("dtype", DTYPES, "float32")
    if dtype in ("int32", "int64"):
        raise top.error(f"dtype {dtype} cannot hold activations", "use float32, float16 or bfloat16")
    neuron_node = top.value("neuron")
    neuron = parse_neuron(neuron_node, NeuronSpec(), file, None) if neuron_node is not None else NeuronSpec()
    optimizer_node = top.value("optimizer")
    optimizer = parse_optimizer(optimizer_node, file) if optimizer_node is not None else OptimizerSpec()
    classes_node = top.value("classes")
    layers_node = top.require("layers", "[...]  (a list of layers)")
    top.reject_unknown_keys(TOP_LEVEL_KEYS)

    builder = _LayerBuilder(file, neuron)
    layers, output = builder.build_list(layers_node, input_shape, "", "layers")
    if not layers:
        line, col = _loc(layers_node)
        raise ProfileError(file, "the network has no layers", "list at least one layer under `layers:`", line, col)
    last = layers[-1]
    if len(output) != 1:
        raise ProfileError(file, f"the network ends with shape {_shape_text(output)}, but training needs class scores "
                           "(one number per class)", "end the network with `- flatten` and `- linear: {out: NUMBER_OF_CLASSES}`",
                           last.line, last.column, last.path)
    if classes_node is not None:
        classes = integer(classes_node, "classes", 2, file, None, "the profile")
        if classes != output[0]:
            line, col = _loc(classes_node)
            raise ProfileError(file, f"the profile says {classes} classes but the last layer gives {output[0]} outputs",
                               f"set the last linear layer's `out` to {classes}, or `classes` to {output[0]}",
                               line, col, last.path)
    if output[0] < 2:
        raise ProfileError(file, f"the network gives {output[0]} output, but classification needs at least 2 classes",
                           "set the last linear layer's `out` to the number of classes", last.line, last.column, last.path)
    if per_timestep and any(layer.kind == "trevsnn" for layer in layers):
        raise inp.error("a trevsnn network's stem encodes the input once, so its input cannot change every timestep",
                        "remove `perTimestep: true`, or use a network without `trevsnn:`", per_timestep_node)
    return Profile(name=name, source_path=file, description=description, input_shape=input_shape, timesteps=timesteps,
                   batch=batch, dtype=dtype, neuron=neuron, optimizer=optimizer, layers=layers, classes=output[0],
                   input_per_timestep=per_timestep)


def _parse_input_shape(inp) -> tuple:
    """`{channels, height, width}` for images and event frames, or `{features}` for a sequence of
    feature vectors ([T, B, features] with `perTimestep: true`); a sample is one or the other."""
    features_node = inp.value("features")
    if features_node is None:
        return (inp.int("channels", example="3"), inp.int("height", example="32"), inp.int("width", example="32"))
    image = next((key for key in ("channels", "height", "width") if inp.value(key) is not None), None)
    if image is not None:
        raise inp.error(f"the input gives both `features:` (a vector per sample) and `{image}:` (an image)",
                        "keep `features:` for [T, B, features] sequences, or `channels`, `height` and `width` for images",
                        inp.value(image))
    return (integer(features_node, "features", 1, inp.file, None, "input"),)


def _shape_text(shape: tuple) -> str:
    return "x".join(str(d) for d in shape)


def parse_neuron(node, base: NeuronSpec, file: str, layer_path: Optional[str]) -> NeuronSpec:
    if _is_null_scalar(node):
        return base.copy()
    m = _Mapping(node, file, layer_path, "neuron")
    spec = base.copy()
    spec.type = m.choice("type", NEURON_TYPES, base.type)
    spec.tau = m.double("tau", base.tau)
    if spec.tau < 1:
        raise m.error(f"neuron 'tau' is {spec.tau}, but a LIF time constant must be at least 1 (decay 1/tau <= 1)",
                      "set `tau:` to 1 or more (2.0 is common)")
    decay_node = m.value("decayInput")
    spec.decay_input = m.bool("decayInput", base.decay_input if spec.type == "plif" else True)
    if spec.type == "plif" and spec.tau <= 1:
        raise m.error(f"a plif neuron's initial 'tau' is {spec.tau}, but its weight w = -ln(tau - 1) needs tau > 1",
                      "set `tau:` above 1 (2.0 is SpikingJelly's default)", m.value("tau"))
    if spec.type != "plif" and not spec.decay_input:
        raise m.error(f"'decayInput: false' is a plif setting; a {spec.type} neuron always decays its input",
                      "remove `decayInput:` or use `type: plif`", decay_node)
    _parse_alif_settings(m, spec, base)
    spec.threshold = m.double("threshold", base.threshold, positive=True)
    spec.v_reset = m.double("vReset", base.v_reset)
    spec.reset = m.choice("reset", RESETS, base.reset)
    spec.detach_reset = m.bool("detachReset", base.detach_reset)
    surrogate_node = m.value("surrogate")
    if surrogate_node is not None:
        if isinstance(surrogate_node, yaml.ScalarNode):
            text = surrogate_node.value
            if text.lower() not in SURROGATES:
                raise m.error(f"surrogate '{text}' is not one of: atan, sigmoid",
                              "write `surrogate: atan` or `surrogate: sigmoid`", surrogate_node)
            spec.surrogate = text.lower()
        else:
            s = _Mapping(surrogate_node, file, layer_path, "surrogate")
            spec.surrogate = s.choice("type", SURROGATES, base.surrogate)
            spec.surrogate_alpha = s.double("alpha", base.surrogate_alpha, positive=True)
            s.reject_unknown_keys(["type", "alpha"])
    if spec.type == "li":
        key = next((k for k in SPIKE_SETTING_KEYS if m.value(k) is not None), None)
        if key is not None:
            raise m.error(f"'{key}' is a spiking setting, but an li neuron (a leaky integrator) never fires",
                          f"remove `{key}:`, or use `type: lif`", m.value(key))
    m.reject_unknown_keys(["type", "tau", "threshold", "vReset", "reset", "detachReset", "surrogate", "decayInput", "rho", "beta", "name"])
    return spec


def _parse_alif_settings(m, spec: NeuronSpec, base: NeuronSpec) -> None:
    """`rho` in [0, 1) and `beta` >= 0 of an alif neuron, refused on other types (as Swift's parseALIFSettings)."""
    if spec.type != "alif":
        key = next((k for k in ("rho", "beta") if m.value(k) is not None), None)
        if key is not None:
            raise m.error(f"'{key}' is an adaptive-threshold setting, but a {spec.type} neuron has no adaptation",
                          f"remove `{key}:`, or use `type: alif`", m.value(key))
        return
    rho_node = m.value("rho")
    spec.rho = m.double("rho", base.rho if base.type == "alif" else NeuronSpec().rho)
    if not 0 <= spec.rho < 1:
        raise m.error(f"an alif neuron's 'rho' is {spec.rho}, but the adaptation's decay per timestep must be in [0, 1)",
                      "set `rho:` to at least 0 and below 1 (0.9 is the default; exp(-1/tau_a) for a time constant tau_a)",
                      rho_node)
    beta_node = m.value("beta")
    spec.beta = m.double("beta", base.beta if base.type == "alif" else NeuronSpec().beta)
    if not spec.beta >= 0:
        raise m.error(f"an alif neuron's 'beta' is {spec.beta}, but the threshold's rise per unit of adaptation must be 0 or more",
                      "set `beta:` to 0 or more (1.8 is the default, as Bellec et al. 2018)", beta_node)


def parse_optimizer(node, file: str) -> OptimizerSpec:
    m = _Mapping(node, file, None, "optimizer")
    spec = OptimizerSpec()
    spec.type = m.choice("type", OPTIMIZERS, spec.type)
    spec.learning_rate = m.double("learningRate", 1e-3 if spec.type == "adam" else 0.1, positive=True)
    spec.momentum = m.double("momentum", 0.9 if spec.type == "sgd" else 0.0, value_range=(0, 0.999999))
    spec.weight_decay = m.double("weightDecay", 0.0, value_range=(0, 1))
    spec.beta1 = m.double("beta1", 0.9, value_range=(0, 0.999999))
    spec.beta2 = m.double("beta2", 0.999, value_range=(0, 0.999999))
    spec.epsilon = m.double("epsilon", 1e-8, positive=True)
    if spec.type == "adam" and "momentum" in m.used:
        raise m.error("'momentum' is an SGD setting; Adam uses beta1 and beta2", "remove `momentum:` or use `type: sgd`")
    m.reject_unknown_keys(["type", "learningRate", "momentum", "weightDecay", "beta1", "beta2", "epsilon"])
    return spec


def _join(parent: str, name: str) -> str:
    return name if not parent else parent + "/" + name


class _LayerBuilder:
    """The Swift `LayerBuilder`: turns `layers:` into `Layer`s, inferring every shape."""

    def __init__(self, file: str, default_neuron: NeuronSpec):
        self.file = file
        self.default_neuron = default_neuron

    def fail(self, problem: str, fix: str, path: str, at: tuple) -> ProfileError:
        return ProfileError(self.file, problem, fix, at[0], at[1], path)

    def build_list(self, node, input_shape: tuple, parent_path: str, context: str):
        if not isinstance(node, yaml.SequenceNode):
            line, col = _loc(node)
            raise ProfileError(self.file, f"{context} must be a list of layers, found {_kind_name(node)}",
                               "write each layer on its own line starting with `- `, e.g. `- conv: {out: 64, kernel: 3}`",
                               line, col, parent_path or None)
        layers = []
        shape = input_shape
        names = set()
        for index, item in enumerate(node.value):
            built = self.build_entry(item, index, shape, parent_path)
            for layer in built:
                if layer.name in names:
                    raise ProfileError(self.file, f"two layers in the same list are named '{layer.name}'",
                                       "give each layer a unique `name:`", layer.line, layer.column, layer.path)
                names.add(layer.name)
                layers.append(layer)
                shape = layer.output_shape
            if layers and layers[-1].kind == "trevsnn" and index != len(node.value) - 1:
                line, col = _loc(node.value[index + 1])
                raise ProfileError(self.file, "a trevsnn network has its own classifier heads, so no layer may follow it",
                                   "remove the layers after `trevsnn:`, or set its `classes:`", line, col, layers[-1].path)
        return layers, shape

    def build_entry(self, node, index: int, input_shape: tuple, parent_path: str) -> list:
        location = _loc(node)
        params_node = None
        if isinstance(node, yaml.ScalarNode):
            kind = node.value
        elif isinstance(node, yaml.MappingNode):
            keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
            if len(node.value) != 1 or len(keys) != 1:
                raise ProfileError(self.file, f"a layer entry must have exactly one kind, found the keys {', '.join(keys)}",
                                   "write one layer per list item, with its settings nested: `- conv: {out: 64, kernel: 3}`",
                                   location[0], location[1], parent_path or None)
            kind = keys[0]
            params_node = node.value[0][1]
            if _is_null_scalar(params_node):
                params_node = None
        else:
            raise ProfileError(self.file, f"a layer entry must be a layer kind or a mapping, found {_kind_name(node)}",
                               "write `- KIND` or `- KIND: {settings}`", location[0], location[1], parent_path or None)
        provisional = _join(parent_path, f"{kind}{index}")
        if kind not in KINDS:
            guess = min(KINDS, key=lambda k: edit_distance(k, kind))
            close = edit_distance(guess, kind) <= 3 or kind.lower().startswith(guess)
            hint = f" (did you mean '{guess}'?)" if close else ""
            raise ProfileError(self.file, f"unknown layer kind '{kind}'{hint}", f"use one of: {', '.join(KINDS)}",
                               location[0], location[1], provisional)
        if params_node is not None:
            params = _Mapping(params_node, self.file, provisional, kind)
        else:
            params = _Mapping(yaml.MappingNode("tag:yaml.org,2002:map", [], node.start_mark, node.end_mark),
                              self.file, provisional, kind)
        name = params.string("name", f"{kind}{index}") or f"{kind}{index}"
        if name == "" or "/" in name:
            raise params.error(f"layer name '{name}' is empty or contains '/'", "use a name without slashes")
        path = _join(parent_path, name)
        params.layer_path = path
        # After naming the layer, so a misspelt key is reported under the `name:` the user gave.
        params.reject_unknown_keys(ALLOWED_KEYS[kind])
        if kind == "repeat":
            return self.build_repeat(params, name, input_shape, parent_path)
        layer = self.build_kind(kind, params, input_shape, path, location)
        layer.name = name
        return [layer]

    def require_spatial(self, input_shape: tuple, kind: str, path: str, location: tuple) -> tuple:
        if len(input_shape) != 3:
            raise self.fail(f"{kind} needs a [channels, height, width] input, but receives {_shape_text(input_shape)} "
                            "(already flattened)", f"move the {kind} before the flatten layer", path, location)
        return input_shape

    # conv and conv1d differ only in defaults: conv's kernel is required and its bias off; conv1d's
    # kernel defaults to 1 (a token-wise projection) and its bias is on, as in Swift's loader.
    CONV_DEFAULTS = {"conv": dict(out_example="64", kernel=None, bias=False),
                     "conv1d": dict(out_example="384", kernel=1, bias=True)}

    def conv_settings(self, p: _Mapping, kind: str, c: int, path: str, location: tuple) -> tuple:
        """out, kernel, stride, padding, groups and bias of a conv or conv1d, with `in:` and `groups` checked."""
        d = self.CONV_DEFAULTS[kind]
        out = p.int("out", example=d["out_example"])
        kernel = p.int("kernel", d["kernel"], example="3")
        stride = p.int("stride", 1)
        padding = p.int("padding", 0, min_value=0)
        groups = p.int("groups", 1)
        bias = p.bool("bias", d["bias"])
        in_node = p.value("in")
        if in_node is not None:
            declared = integer(in_node, "in", 1, self.file, path, kind)
            if declared != c:
                raise self.fail(f"{kind} declares {declared} input channels but receives {c}",
                                f"set `in: {c}` or remove `in:` to infer it", path, _loc(in_node))
        p.reject_unknown_keys(ALLOWED_KEYS[kind])
        if c % groups != 0 or out % groups != 0:
            raise self.fail(f"groups = {groups} must divide both the input channels ({c}) and `out` ({out})",
                            f"choose groups dividing {c} and {out} (groups = {c} with out = {c} is depthwise)", path, location)
        return out, kernel, stride, padding, groups, bias

    def require_padding_below_kernel(self, padding: int, kernel: int, path: str, location: tuple) -> None:
        if padding >= kernel:
            raise self.fail(f"padding {padding} is not smaller than the kernel {kernel}",
                            f"use padding at most {kernel - 1}", path, location)

    def build_kind(self, kind: str, p: _Mapping, inp: tuple, path: str, location: tuple) -> Layer:
        def make(out_shape, **extra):
            return Layer(name="", path=path, kind=kind, input_shape=tuple(inp), output_shape=tuple(out_shape),
                         line=location[0], column=location[1], **extra)

        if kind == "conv":
            c, h, w = self.require_spatial(inp, "conv", path, location)
            out, kernel, stride, padding, groups, bias = self.conv_settings(p, "conv", c, path, location)
            h_out = (h + 2 * padding - kernel) // stride + 1
            w_out = (w + 2 * padding - kernel) // stride + 1
            if h + 2 * padding < kernel or w + 2 * padding < kernel or h_out < 1 or w_out < 1:
                raise self.fail(f"a {kernel}x{kernel} kernel does not fit a {h}x{w} input with padding {padding}",
                                "use a smaller kernel, more padding, or fewer pooling layers before this one", path, location)
            self.require_padding_below_kernel(padding, kernel, path, location)
            return make((out, h_out, w_out), params=dict(in_channels=c, out_channels=out, kernel=kernel, stride=stride,
                                                         padding=padding, groups=groups, bias=bias))

        if kind == "convtranspose":
            from .convtranspose import build_convtranspose
            params, out = build_convtranspose(self, p, inp, path, location)
            return make(out, params=params)

        if kind == "batchnorm":
            features_node = p.value("features")
            if features_node is not None:
                declared = integer(features_node, "features", 1, self.file, path, "batchnorm")
                if declared != inp[0]:
                    raise self.fail(f"batchnorm declares {declared} features but receives {inp[0]} channels",
                                    f"set `features: {inp[0]}` or remove it to infer it", path, _loc(features_node))
            p.reject_unknown_keys(ALLOWED_KEYS["batchnorm"])
            return make(inp, params=dict(channels=inp[0]))

        if kind == "layernorm":
            from .layernorm import build_layernorm
            return make(inp, params=build_layernorm(self, p, inp, path, location))

        if kind == "neuron":
            spec = parse_neuron(p.node, self.default_neuron, self.file, path)
            return make(inp, neuron=spec)

        if kind in ("avgpool", "maxpool", "globalavgpool"):
            c, h, w = self.require_spatial(inp, kind, path, location)
            is_global = kind == "globalavgpool"
            if is_global and h != w:
                raise self.fail(f"global average pooling needs a square input, found {h}x{w}",
                                "make the input square or use `avgpool` with an explicit kernel", path, location)
            kernel = h if is_global else p.int("kernel", example="2")
            stride = h if is_global else p.int("stride", kernel)
            padding = 0 if is_global else p.int("padding", 0, min_value=0)
            p.reject_unknown_keys(["name"] if is_global else ["kernel", "stride", "padding", "name"])
            if padding * 2 > kernel:
                raise self.fail(f"padding {padding} is more than half the pooling kernel {kernel}",
                                f"use padding at most {kernel // 2}", path, location)
            h_out = (h + 2 * padding - kernel) // stride + 1
            w_out = (w + 2 * padding - kernel) // stride + 1
            if h + 2 * padding < kernel or w + 2 * padding < kernel or h_out < 1 or w_out < 1:
                raise self.fail(f"a {kernel}x{kernel} pooling window does not fit a {h}x{w} input",
                                "use a smaller kernel or remove a pooling layer before this one", path, location)
            return make((c, h_out, w_out), params=dict(kernel=kernel, stride=stride, padding=padding))

        if kind == "flatten":
            p.reject_unknown_keys(["name"])
            return make((math.prod(inp),))

        if kind == "linear":
            out = p.int("out", example="10")
            bias = p.bool("bias", True)
            if len(inp) != 1:
                raise self.fail(f"linear needs a flat input, but receives {_shape_text(inp)}",
                                "insert `- flatten` before this linear layer", path, location)
            in_node = p.value("in")
            if in_node is not None:
                declared = integer(in_node, "in", 1, self.file, path, "linear")
                if declared != inp[0]:
                    raise self.fail(f"linear declares {declared} input features but receives {inp[0]}",
                                    f"set `in: {inp[0]}`, remove `in:` to infer it, or change the layers before it",
                                    path, _loc(in_node))
            p.reject_unknown_keys(ALLOWED_KEYS["linear"])
            return make((out,), params=dict(in_features=inp[0], out_features=out, bias=bias))

        if kind == "upsample":
            c, h, w = self.require_spatial(inp, "upsample", path, location)
            factor = p.int("factor", example="2")
            p.reject_unknown_keys(["factor", "name"])
            return make((c, h * factor, w * factor), params=dict(factor=factor))

        if kind == "scale":
            initial = p.double("initial", 1e-6)
            p.reject_unknown_keys(["initial", "name"])
            return make(inp, params=dict(initial=initial))

        if kind in ("dropout", "adaptiveavgpool", "voting"):
            return self.build_dvs_kind(kind, p, inp, path, location, make)

        if kind == "recurrent":
            from .recurrent_profile import build_recurrent
            return build_recurrent(self, p, inp, path, location, make)

        if kind == "residual":
            main_node = p.require("main", "[...]  (the residual branch's layers)")
            main, main_out = self.build_list(main_node, inp, path + "/main", "residual `main`")
            shortcut, shortcut_out = [], tuple(inp)
            shortcut_node = p.value("shortcut")
            if shortcut_node is not None:
                shortcut, shortcut_out = self.build_list(shortcut_node, inp, path + "/shortcut", "residual `shortcut`")
            p.reject_unknown_keys(["main", "shortcut", "name"])
            if not main:
                raise self.fail("a residual block needs at least one layer in `main`",
                                "list the branch's layers under `main:`", path, location)
            if tuple(main_out) != tuple(shortcut_out):
                fix = (f"add a `shortcut:` (e.g. a 1x1 conv with stride and batchnorm) that maps {_shape_text(inp)} to "
                       f"{_shape_text(main_out)}") if not shortcut else f"make the shortcut's output {_shape_text(main_out)}"
                raise self.fail(f"the residual branch gives {_shape_text(main_out)} but the shortcut gives "
                                f"{_shape_text(shortcut_out)}; they must match to be added", fix, path, location)
            return make(main_out, main=main, shortcut=shortcut)

        if kind == "branches":
            from .branches import build_branches
            join, paths, out = build_branches(self, p, inp, path, location)
            return make(out, join=join, paths=paths)

        if kind == "reversible":
            c, h, w = self.require_spatial(inp, "reversible", path, location)
            if c % 2 != 0:
                raise self.fail(f"a reversible stage splits its {c} input channels into two halves, so they must be even",
                                "make the layer before it give an even number of channels", path, location)
            count = p.int("blocks", 1)
            f_node = p.require("f", "[neuron, {conv: {out: HALF, kernel: 3, padding: 1}}, batchnorm]")
            g_node = p.value("g")
            g_node = f_node if g_node is None else g_node
            p.reject_unknown_keys(ALLOWED_KEYS["reversible"])
            half = (c // 2, h, w)
            blocks = []
            for index in range(count):
                block_path = f"{path}/block{index}"
                f, f_out = self.build_list(f_node, half, block_path + "/f", "reversible `f`")
                g, g_out = self.build_list(g_node, half, block_path + "/g", "reversible `g`")
                for branch, out, node in (("f", f_out, f_node), ("g", g_out, g_node)):
                    if tuple(out) != half:
                        line, col = _loc(node)
                        raise ProfileError(self.file, f"reversible `{branch}` must map a half {_shape_text(half)} to the "
                                           f"same shape, but gives {_shape_text(out)}",
                                           f"keep {c // 2} channels and the resolution inside `{branch}` (stride 1, "
                                           f"`out: {c // 2}`)", line, col, block_path + "/" + branch)
                from .branches import refuse_inside_reversible
                refuse_inside_reversible(self, f + g)
                self.refuse_dropout(f + g)
                blocks.append(ReversibleBlock(block_path, f, g))
            return make(inp, blocks=blocks)

        if kind == "trevsnn":
            spec = self.build_trev(p, inp, path, location)
            return make((spec.classes,), trev=spec)

        if kind == "conv1d":
            c = self.require_tokens(inp, "conv1d", path, location)
            tokens = inp[1]
            out, kernel, stride, padding, groups, bias = self.conv_settings(p, "conv1d", c, path, location)
            if tokens + 2 * padding < kernel:
                raise self.fail(f"a kernel of {kernel} does not fit {tokens} tokens with padding {padding}",
                                "use a smaller kernel or more padding", path, location)
            self.require_padding_below_kernel(padding, kernel, path, location)
            return make((out, (tokens + 2 * padding - kernel) // stride + 1),
                        params=dict(in_channels=c, out_channels=out, kernel=kernel, stride=stride, padding=padding,
                                    groups=groups, bias=bias))

        if kind == "tokens":
            c, h, w = self.require_spatial(inp, "tokens", path, location)
            p.reject_unknown_keys(ALLOWED_KEYS["tokens"])
            return make((c, h * w))

        if kind == "tokenmean":
            c = self.require_tokens(inp, "tokenmean", path, location)
            p.reject_unknown_keys(ALLOWED_KEYS["tokenmean"])
            return make((c,))

        if kind == "attention":
            return self.build_attention(p, inp, path, location, make)

        raise AssertionError(f"layer kind {kind} is listed but not built")

    def refuse_dropout(self, layers: list) -> None:
        """Swift's refuseDropout: a reversible stage reruns f and g in backward, which would draw a new mask."""
        for layer in layers:
            if layer.kind == "dropout":
                raise self.fail("dropout inside a reversible stage would draw another mask when backward reruns `f` and "
                                "`g` to rebuild their inputs", "move the dropout before or after the `reversible:` stage",
                                layer.path, (layer.line, layer.column))
            if layer.kind == "residual":
                self.refuse_dropout(layer.main + layer.shortcut)

    def build_dvs_kind(self, kind: str, p: _Mapping, inp: tuple, path: str, location: tuple, make) -> Layer:
        """dropout, adaptiveavgpool and voting (Swift's LayerBuilder+DVSLayers.swift)."""
        if kind == "dropout":
            p_node = p.value("p")
            probability = p.double("p", 0.5)
            p.reject_unknown_keys(ALLOWED_KEYS["dropout"])
            if not 0 < probability < 1:
                raise p.error(f"dropout 'p' is {probability}, but the probability of zeroing an element must be between 0 "
                              "and 1 (exclusive)", "set `p:` to a value such as 0.5, or remove the dropout layer", p_node)
            return make(inp, params=dict(p=probability))
        if kind == "adaptiveavgpool":
            c, h, w = self.require_spatial(inp, "adaptiveavgpool", path, location)
            node = p.require("output", "[7, 7]")
            p.reject_unknown_keys(ALLOWED_KEYS["adaptiveavgpool"])
            if isinstance(node, yaml.SequenceNode):
                sizes = list(node.value)
            elif isinstance(node, yaml.ScalarNode):
                sizes = [node, node]
            else:
                sizes = []
            if len(sizes) != 2:
                raise p.error(f"adaptiveavgpool `output` must be [height, width] or one number, found {_display(node)}",
                              "write `output: [7, 7]` or `output: 7`", node)
            oh = integer(sizes[0], "output", 1, self.file, path, "adaptiveavgpool")
            ow = integer(sizes[1], "output", 1, self.file, path, "adaptiveavgpool")
            return make((c, oh, ow), params=dict(output=(oh, ow)))
        size_node = p.value("size")
        size = p.int("size", 10)
        p.reject_unknown_keys(ALLOWED_KEYS["voting"])
        if len(inp) != 1:
            raise self.fail(f"voting averages groups of flat features, but receives {_shape_text(inp)}",
                            "put `- flatten` and a linear layer before it", path, location)
        if inp[0] % size != 0 or inp[0] < size:
            raise p.error(f"voting groups of {size} do not divide the {inp[0]} features it receives",
                          f"make the layer before it give a multiple of {size} features (e.g. {size * max(1, inp[0] // size)})",
                          size_node)
        return make((inp[0] // size,), params=dict(size=size))

    def require_tokens(self, input_shape: tuple, kind: str, path: str, location: tuple) -> int:
        if len(input_shape) != 2:
            raise self.fail(f"{kind} needs a [channels, tokens] input, but receives {_shape_text(input_shape)}",
                            "insert `- tokens` after the convolutional stem to turn [C, H, W] into [C, H*W] tokens",
                            path, location)
        return input_shape[0]

    def build_attention(self, p: _Mapping, inp: tuple, path: str, location: tuple, make) -> Layer:
        """Spikformer's SSA (Swift's `buildAttention`): q, k, v each conv1d (kernel 1, no bias), batchnorm,
        neuron; (q kT) v times `scale`, no softmax; the attention neuron (`threshold`); proj conv1d (bias),
        batchnorm, neuron. Sub-layers are named as in the reference code."""
        c = self.require_tokens(inp, "attention", path, location)
        kind = p.choice("kind", ATTENTION_KINDS, "ssa")
        heads_node = p.value("heads")
        heads = p.int("heads", example="12")
        scale = p.double("scale", 0.125, positive=True)
        threshold = p.double("threshold", 0.5, positive=True)
        p.reject_unknown_keys(ALLOWED_KEYS["attention"])
        if c % heads != 0:
            raise self.fail(f"{heads} heads do not divide the {c} channels", f"use a number of heads that divides {c} "
                            "(Spikformer-4-384 uses 12)", path, _loc(heads_node) if heads_node is not None else location)
        shape = tuple(inp)
        parts = []

        def part(name, kind_, part_shape=shape, **extra):
            parts.append(Layer(name=name, path=f"{path}/{name}", kind=kind_, input_shape=part_shape, output_shape=part_shape,
                               line=location[0], column=location[1], **extra))

        for branch in ("q", "k", "v"):
            part(f"{branch}_conv", "conv1d", params=dict(in_channels=c, out_channels=c, bias=False))
            part(f"{branch}_bn", "batchnorm", params=dict(channels=c))
            part(f"{branch}_lif", "neuron", neuron=self.default_neuron.copy())
        attn_neuron = self.default_neuron.copy()
        attn_neuron.threshold = threshold
        if kind == "sdsa":
            # the Spike-driven Transformer's SDSA fires on the column sums of k*v: one value per channel
            part("talking_heads_lif", "neuron", (c, 1), neuron=attn_neuron)
        else:
            part("attn_lif", "neuron", neuron=attn_neuron)
        part("proj_conv", "conv1d", params=dict(in_channels=c, out_channels=c, bias=True))
        part("proj_bn", "batchnorm", params=dict(channels=c))
        if kind == "ssa":
            part("proj_lif", "neuron", neuron=self.default_neuron.copy())
        return make(shape, params=dict(kind=kind, heads=heads, scale=scale, threshold=threshold), parts=parts)

    def build_trev(self, p: _Mapping, inp: tuple, path: str, location: tuple) -> TRevSpec:
        """Swift's `LayerBuilder.buildTRev`: the levels' down, up and block layers and the head, with
        their shapes (layer budgets aside: PyTorch builds what Swift plans)."""
        stem_c, stem_h, stem_w = self.require_spatial(inp, "trevsnn", path, location)
        levels_node = p.require("levels", "[{channels: 32}, {channels: 64}]")
        kernel = p.int("kernel", 3)
        expansion = p.int("expansion", 4)
        alpha_node = p.value("alpha")
        alpha = p.double("alpha", 0.5)
        layer_scale = p.double("layerScale", 1e-6)
        classes = p.int("classes", min_value=2, example="10")
        base = self.default_neuron.copy()
        neuron = NeuronSpec(type="turnoff", threshold=base.threshold, surrogate=base.surrogate,
                            surrogate_alpha=base.surrogate_alpha)
        neuron_node = p.value("neuron")
        if neuron_node is not None:
            neuron = parse_neuron(neuron_node, neuron, self.file, path)
            # As the Swift loader: a column is one timestep, so its neurons carry no membrane potential.
            if neuron.type != "turnoff":
                raise p.error(f"a T-RevSNN network's neurons are stateless turn-off neurons; `type: {neuron.type}` would carry "
                              "a membrane potential that no column uses",
                              "write `neuron: {type: turnoff, threshold: 1.0}` or leave `neuron:` out (threshold and surrogate "
                              "come from the profile's neuron)", neuron_node)
        p.reject_unknown_keys(ALLOWED_KEYS["trevsnn"])
        if abs(alpha) < 1e-3:
            raise p.error(f"alpha = {alpha} is too small: the inverse divides by it",
                          "use |alpha| >= 0.001 (0.5 is the paper's value)", alpha_node)
        if kernel % 2 != 1:
            raise p.error(f"kernel {kernel} must be odd so the depthwise conv keeps the resolution", "use 3, 5 or 7")
        if not isinstance(levels_node, yaml.SequenceNode) or not levels_node.value:
            raise self.fail("trevsnn `levels` must be a non-empty list", "write `levels: [{channels: 32}, {channels: 64}]`",
                            path, _loc(levels_node))

        specs = []  # (channels, blocks, stride, shape, location)
        below = (stem_c, stem_h, stem_w)
        for index, item in enumerate(levels_node.value):
            level = _Mapping(item, self.file, f"{path}/level{index}", "trevsnn level")
            channels = level.int("channels", example="64")
            blocks = level.int("blocks", 1, min_value=0)
            stride = level.int("stride", 1 if index == 0 else 2)
            level.reject_unknown_keys(["channels", "blocks", "stride"])
            if stride > 2:
                raise level.error(f"level stride {stride} is not supported", "use stride 1 (1x1 conv) or 2 (3x3 conv)")
            h, w = (below[1] - 1) // stride + 1, (below[2] - 1) // stride + 1
            specs.append((channels, blocks, stride, (channels, h, w), _loc(item)))
            below = (channels, h, w)

        def chain(chain_path: str, at: tuple, shape: tuple, steps: list) -> list:
            """Layers of known shapes (Swift's `chain`): steps are (name, kind, output shape, extra fields)."""
            out = []
            for name, kind, output, extra in steps:
                out.append(Layer(name=name, path=f"{chain_path}/{name}", kind=kind, input_shape=tuple(shape),
                                 output_shape=tuple(output), line=at[0], column=at[1], **extra))
                shape = output
            return out

        def conv(cin, cout, k, stride, padding, groups, bias):
            return dict(params=dict(in_channels=cin, out_channels=cout, kernel=k, stride=stride, padding=padding,
                                    groups=groups, bias=bias))

        levels = []
        for index, (c, block_count, stride, shape, at) in enumerate(specs):
            level_path = f"{path}/level{index}"
            below_shape = tuple(inp) if index == 0 else specs[index - 1][3]
            down = chain(level_path + "/down", at, below_shape, [
                ("neuron0", "neuron", below_shape, dict(neuron=neuron.copy())),
                ("conv1", "conv", shape, conv(below_shape[0], c, 1 if stride == 1 else 3, stride, 0 if stride == 1 else 1, 1,
                                              False)),
                ("batchnorm2", "batchnorm", shape, dict(params=dict(channels=c))),
            ])
            up = []
            if index + 1 < len(specs):
                above = specs[index + 1][3]
                if shape[1] % above[1] or shape[2] % above[2] or shape[1] // above[1] != shape[2] // above[2]:
                    raise self.fail(f"level {index + 1} ({_shape_text(above)}) cannot be upsampled by a whole factor to "
                                    f"level {index} ({_shape_text(shape)})", "use input sizes divisible by 2 at every level",
                                    level_path, at)
                factor = shape[1] // above[1]
                small = (c, above[1], above[2])
                up = chain(level_path + "/up", at, above, [
                    ("neuron0", "neuron", above, dict(neuron=neuron.copy())),
                    ("conv1", "conv", small, conv(above[0], c, 1, 1, 0, 1, False)),
                    ("batchnorm2", "batchnorm", small, dict(params=dict(channels=c))),
                    ("upsample3", "upsample", shape, dict(params=dict(factor=factor))),
                ])
            blocks = []
            for b in range(block_count):
                block_path = f"{level_path}/block{b}"
                wide = (c * expansion, shape[1], shape[2])
                main = chain(block_path + "/main", at, shape, [
                    ("neuron0", "neuron", shape, dict(neuron=neuron.copy())),
                    ("dwconv1", "conv", shape, conv(c, c, kernel, 1, kernel // 2, c, False)),
                    ("pwconv2", "conv", wide, conv(c, c * expansion, 1, 1, 0, 1, True)),
                    ("neuron3", "neuron", wide, dict(neuron=neuron.copy())),
                    ("pwconv4", "conv", shape, conv(c * expansion, c, 1, 1, 0, 1, True)),
                    ("scale5", "scale", shape, dict(params=dict(initial=layer_scale))),
                ])
                blocks.append(Layer(name=f"block{b}", path=block_path, kind="residual", input_shape=shape,
                                    output_shape=shape, line=at[0], column=at[1], main=main))
            levels.append(TRevLevel(level_path, c, shape, down, up, blocks))
        top = specs[-1][3]
        if top[1] != top[2]:
            raise self.fail(f"the top level is {top[1]}x{top[2]}; the heads' global pooling needs a square map",
                            "use a square input", path, location)
        head = chain(path + "/head", location, top, [
            ("neuron0", "neuron", top, dict(neuron=neuron.copy())),
            ("avgpool1", "avgpool", (top[0], 1, 1), dict(params=dict(kernel=top[1], stride=top[1], padding=0))),
            ("flatten2", "flatten", (top[0],), {}),
            ("linear3", "linear", (classes,), dict(params=dict(in_features=top[0], out_features=classes, bias=True))),
        ])
        return TRevSpec(levels, kernel, expansion, alpha, head, classes)

    def build_repeat(self, p: _Mapping, name: str, inp: tuple, parent_path: str) -> list:
        times = p.int("times", example="2")
        body = p.require("layers", "[...]  (the layers to repeat)")
        p.reject_unknown_keys(["times", "layers", "name"])
        layers = []
        shape = inp
        for copy in range(times):
            built, output = self.build_list(body, shape, _join(parent_path, f"{name}.{copy}"), "repeat `layers`")
            # Repeated layers are spliced into the parent list; their names carry the copy number.
            for layer in built:
                layer.name = f"{name}.{copy}/{layer.name}"
                layers.append(layer)
            shape = output
        return layers
