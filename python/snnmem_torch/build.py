"""Builds a profile's network in PyTorch + SpikingJelly 2.0.

Every profile layer becomes one module whose `path` is the Swift `Layer.path`; a residual block
is a module running `main(x) + shortcut(x)` (an empty shortcut is the identity; SEW's ADD is
the same construct); a reversible stage is `reversible.ReversibleStage` (its blocks' f and g layers
are modules of their own); a `trevsnn:` network is `trevsnn.TRevNet`, one column of modules per
timestep, its layers registered as "col<t>/<path>". Multi-step mode (`step_mode='m'`, tensors
[T, B, ...]) for bptt and checkpoint, single-step mode (`'s'`, [B, ...]) for SLTT and for every
profile with a T-RevSNN network (its columns are the timesteps).

SpikingJelly 2.0 notes (read from its installed source): `LIFNode`/`IFNode` have no `backend`
argument any more; on the CPU their multi-step forward is a registered operator
(`torch.ops.sj_lif.forward`) whose AutogradCPU kernel is the Python reference loop
(`spikingjelly/_ops/lif/reference.py`), so autograd records the elementwise ops of every
timestep. On CUDA the operator picks a fused kernel unless `SJ_LIF_CUDA_IMPLEMENTATION` /
`SJ_IF_CUDA_IMPLEMENTATION` is `torch` (see `select_neuron_backend`). `LIFNode` asserts
`tau > 1` (strictly) where the Swift loader allows `tau >= 1`.
"""

from __future__ import annotations

import os
from typing import Optional

import torch
import torch.nn as nn

from .errors import UnsupportedProfile
from .profile import Layer, NeuronSpec, Profile

# Layers that exist only inside a T-RevSNN network, where trevsnn.py builds them; the Swift loader
# accepts them anywhere, this package only there.
_TREV_ONLY = {
    "scale": "scale (layer scale) is built only inside a `trevsnn:` network (its ConvNeXt-style blocks)",
}


def select_neuron_backend(backend: str) -> None:
    """Chooses SpikingJelly's CUDA neuron implementation (auto, torch, cuda, triton).

    SpikingJelly reads these variables when its operators are first imported, so this must run
    before `spikingjelly.activation_based` is imported; CPU runs always use the torch reference.
    """
    for variable in ("SJ_LIF_CUDA_IMPLEMENTATION", "SJ_IF_CUDA_IMPLEMENTATION"):
        os.environ[variable] = backend


def _sj():
    from spikingjelly.activation_based import layer, neuron, surrogate  # noqa: F401  (imported late on purpose)
    return layer, neuron, surrogate


class Residual(nn.Module):
    """out = main(x) + shortcut(x); the shortcut is the identity when it has no layers."""

    def __init__(self, main: nn.Sequential, shortcut: Optional[nn.Sequential]):
        super().__init__()
        self.main = main
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.main(x)
        s = self.shortcut(x) if self.shortcut is not None else x
        return y + s


class Network(nn.Module):
    """A profile's network; `layers` maps each profile layer path to its module, in forward order.

    A profile with a `trevsnn:` network runs single-step whatever `step_mode` says: its stem encodes
    the images once and each column is one timestep (trevsnn.py). Its columns' layers are registered
    as "col<t>/<path>" (Swift's `ParameterLayout.columnPrefix`), `timesteps` columns of them."""

    def __init__(self, profile: Profile, step_mode: str = "m", timesteps: Optional[int] = None):
        super().__init__()
        self.profile = profile
        self.is_trev = any(layer.kind == "trevsnn" for layer in profile.layers)
        self.step_mode = "s" if self.is_trev else step_mode
        self.timesteps = timesteps if timesteps is not None else profile.timesteps
        self.layers: dict = {}
        self.kinds: dict = {}
        self._prefix = ""  # the column prefix while a T-RevSNN column is built
        self._inside_trev = False
        self.body = self._sequence(profile.layers)

    @property
    def neurons(self) -> list:
        """(path, module) of every spiking neuron, in forward order."""
        out = []
        for path, module in self.layers.items():
            if self.kinds[path] == "neuron":
                out.append((path, module))
            elif self.kinds[path] == "recurrent":
                # Its fed-back spikes (the module's `v`) and its neuron's v (recurrent.py).
                out += [(path, module), (path, module.neuron)]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    # ------------------------------------------------------------------------------------------

    def _sequence(self, layers: list) -> nn.Sequential:
        modules = [self._module(layer) for layer in layers]
        return nn.Sequential(*modules)

    def _refuse(self, layer: Layer, why: str):
        raise UnsupportedProfile(self.profile.source_path,
                                 f"{layer.kind} cannot be built in PyTorch + SpikingJelly: {why}",
                                 "use snnmem (Swift) for this profile, or a profile of conv, convtranspose, batchnorm, layernorm, "
                                 "neuron, avgpool, maxpool, globalavgpool, adaptiveavgpool, flatten, linear, dropout, voting, "
                                 "upsample, residual, branches, reversible, trevsnn, conv1d, tokens, tokenmean, attention and recurrent "
                                 "layers",
                                 layer.line, layer.column, layer.path)

    def _trev(self, layer: Layer) -> nn.Module:
        """A `trevsnn:` network: `timesteps` columns of levels and a head, each with its own weights."""
        from .trevsnn import Column, Level, TRevNet
        spec = layer.trev
        columns = []
        self._inside_trev = True
        for t in range(self.timesteps):
            self._prefix = f"col{t}/"
            levels = []
            for level in spec.levels:
                down = self._sequence(level.down)
                up = self._sequence(level.up) if level.up else None
                levels.append(Level(level.path, level.channels, down, up, self._sequence(level.blocks)))
            columns.append(Column(self._prefix, levels, spec.alpha_init, self._sequence(spec.head)))
        self._prefix = ""
        self._inside_trev = False
        return TRevNet(layer.path, columns)

    def _module(self, layer: Layer) -> nn.Module:
        sj_layer, _, _ = _sj()
        m = self.step_mode
        path = self._prefix + layer.path
        if layer.kind in _TREV_ONLY and not self._inside_trev:
            self._refuse(layer, _TREV_ONLY[layer.kind])
        if layer.kind == "trevsnn":
            # Registered before its columns' layers; its module's hooks put its path on the tracker's
            # stack while it runs (the alpha terms between levels are attributed to their level).
            self.layers[path] = None
            self.kinds[path] = "trevsnn"
            module = self._trev(layer)
        elif layer.kind == "upsample" and self._inside_trev:
            from .trevsnn import Upsample
            module = Upsample(layer.params["factor"])
        elif layer.kind == "upsample":
            # Outside T-RevSNN (a U-Net's decoder): SpikingJelly's wrapper, on [T*B, ...] in multi-step mode.
            module = sj_layer.Upsample(scale_factor=layer.params["factor"], mode="nearest", step_mode=m)
        elif layer.kind == "scale":
            from .trevsnn import Scale
            module = Scale(layer.params["initial"])
        elif layer.kind == "residual":
            # Registered before its children, as Swift's allLayers lists a parent before them.
            self.layers[path] = None
            self.kinds[path] = "residual"
            main = self._sequence(layer.main)
            shortcut = self._sequence(layer.shortcut) if layer.shortcut else None
            module = Residual(main, shortcut)
        elif layer.kind == "branches":
            # Registered before its paths' layers, as Swift's allLayers lists it (branches.py).
            from .branches import Branches
            self.layers[path] = None
            self.kinds[path] = "branches"
            module = Branches(layer.join, [self._sequence(p) for p in layer.paths])
        elif layer.kind == "reversible":
            # A reversible stage (reversible.py): registered before its blocks' f and g layers, as
            # Swift's allLayers lists it; plain autograd unless the revsnn strategy switches it.
            from .reversible import ReversibleStage
            self.layers[layer.path] = None
            self.kinds[layer.path] = "reversible"
            blocks = []
            for block in layer.blocks:
                f = self._sequence(block.f)
                blocks.append((block.path, f, self._sequence(block.g)))
            module = ReversibleStage(layer.path, blocks)
        elif layer.kind == "attention":
            # Registered before its parts, as Swift's allLayers lists it.
            from .attention import SpikeDrivenSelfAttention, SpikingSelfAttention
            self.layers[path] = None
            self.kinds[path] = "attention"
            parts = {part.name: self._module(part) for part in layer.parts}
            kind = SpikeDrivenSelfAttention if layer.params["kind"] == "sdsa" else SpikingSelfAttention
            module = kind(layer.params["heads"], layer.params["scale"], parts)
        elif layer.kind == "conv1d":
            p = layer.params
            # An attention's q/k/v/proj parts carry no window: kernel 1.
            module = sj_layer.Conv1d(p["in_channels"], p["out_channels"], p.get("kernel", 1), stride=p.get("stride", 1),
                                     padding=p.get("padding", 0), groups=p.get("groups", 1), bias=p["bias"], step_mode=m)
        elif layer.kind == "tokens":
            from .attention import Tokens
            module = Tokens()
        elif layer.kind == "tokenmean":
            from .attention import TokenMean
            module = TokenMean()
        elif layer.kind == "conv":
            p = layer.params
            module = sj_layer.Conv2d(p["in_channels"], p["out_channels"], p["kernel"], stride=p["stride"],
                                     padding=p["padding"], groups=p["groups"], bias=p["bias"], step_mode=m)
        elif layer.kind == "convtranspose":
            p = layer.params
            module = sj_layer.ConvTranspose2d(p["in_channels"], p["out_channels"], p["kernel"], stride=p["stride"],
                                              padding=p["padding"], bias=p["bias"], step_mode=m)
        elif layer.kind == "batchnorm":
            if len(layer.input_shape) == 3:
                module = sj_layer.BatchNorm2d(layer.params["channels"], step_mode=m)
            else:
                module = sj_layer.BatchNorm1d(layer.params["channels"], step_mode=m)
        elif layer.kind == "layernorm":
            # nn.LayerNorm normalises the trailing dims, so it runs on [T, B, ...] (and [B, ...]) as it is.
            p = layer.params
            if "tokens" in p:
                from .token_layernorm import TokenLayerNorm
                module = TokenLayerNorm(p["normalized_shape"][0], eps=p["eps"], elementwise_affine=p["affine"])
            else:
                module = nn.LayerNorm(list(p["normalized_shape"]), eps=p["eps"], elementwise_affine=p["affine"])
        elif layer.kind == "neuron":
            module = self._neuron(layer, layer.neuron)
        elif layer.kind == "avgpool":
            p = layer.params
            module = sj_layer.AvgPool2d(p["kernel"], stride=p["stride"], padding=p["padding"], step_mode=m)
        elif layer.kind == "maxpool":
            p = layer.params
            module = sj_layer.MaxPool2d(p["kernel"], stride=p["stride"], padding=p["padding"], step_mode=m)
        elif layer.kind == "globalavgpool":
            module = sj_layer.AdaptiveAvgPool2d((1, 1), step_mode=m)
        elif layer.kind == "flatten":
            # Multi-step: [T, B, C, H, W] -> [T*B, C, H, W] -> [T*B, CHW] -> [T, B, CHW] (views).
            module = sj_layer.Flatten(start_dim=1, step_mode=m)
        elif layer.kind == "linear":
            p = layer.params
            module = sj_layer.Linear(p["in_features"], p["out_features"], bias=p["bias"], step_mode=m)
        elif layer.kind == "dropout":
            # SpikingJelly's dropout: one mask per sample for every timestep until reset_net.
            module = sj_layer.Dropout(layer.params["p"], step_mode=m)
        elif layer.kind == "adaptiveavgpool":
            module = sj_layer.AdaptiveAvgPool2d(layer.params["output"], step_mode=m)
        elif layer.kind == "voting":
            module = sj_layer.VotingLayer(layer.params["size"], step_mode=m)
        elif layer.kind == "recurrent":
            from .recurrent import RecurrentSpiking
            p = layer.params
            inner = self._neuron(layer, layer.neuron, step_mode="s")
            module = RecurrentSpiking(p["in_features"], p["out_features"], p["bias"], inner, step_mode=m)
        else:  # pragma: no cover - the loader knows no other kinds
            raise AssertionError(layer.kind)
        self.layers[path] = module
        # A turn-off neuron has no state: it is not one of `neurons` (no v, nothing to reset).
        self.kinds[path] = "turnoff" if layer.kind == "neuron" and layer.neuron.type == "turnoff" else layer.kind
        return module

    def _neuron(self, layer: Layer, spec: NeuronSpec, step_mode: Optional[str] = None) -> nn.Module:
        """`step_mode`: the network's unless given (a recurrent layer's neuron runs single-step)."""
        _, sj_neuron, sj_surrogate = _sj()
        step_mode = step_mode or self.step_mode
        alpha = float(spec.surrogate_alpha)
        surrogate = sj_surrogate.ATan(alpha=alpha) if spec.surrogate == "atan" else sj_surrogate.Sigmoid(alpha=alpha)
        if self._inside_trev and spec.type != "turnoff":
            self._refuse(layer, f"a {spec.type} neuron inside a `trevsnn:` network would carry its v into T-RevSNN's "
                                "recomputations; only the stateless turn-off neuron is built there")
        if spec.type == "turnoff":
            if not self._inside_trev:
                self._refuse(layer, "the stateless turn-off neuron is built only inside a `trevsnn:` network")
            # T-RevSNN's stateless neuron: SpikingJelly's surrogate spike function on x - threshold.
            from .trevsnn import TurnOffNeuron
            return TurnOffNeuron(float(spec.threshold), surrogate)
        if spec.type == "li":
            from .leaky_integrator import LeakyIntegrator
            return LeakyIntegrator(float(spec.tau), step_mode=step_mode)
        v_reset = float(spec.v_reset) if spec.reset == "hard" else None
        if spec.type == "alif":
            from .adaptive_lif import AdaptiveLIFNode
            return AdaptiveLIFNode(tau=float(spec.tau), v_threshold=float(spec.threshold), v_reset=v_reset, rho=float(spec.rho),
                                   beta=float(spec.beta), surrogate=spec.surrogate, alpha=alpha,
                                   detach_reset=bool(spec.detach_reset), step_mode=self.step_mode)
        if spec.type == "plif":
            # SpikingJelly's learnable-decay LIF: w = -ln(tau - 1), q = sigmoid(w).
            return sj_neuron.ParametricLIFNode(init_tau=float(spec.tau), decay_input=bool(spec.decay_input),
                                               v_threshold=float(spec.threshold), v_reset=v_reset,
                                               surrogate_function=surrogate, detach_reset=bool(spec.detach_reset),
                                               step_mode=step_mode)
        if spec.type == "lif":
            if not spec.tau > 1.0:
                self._refuse(layer, f"SpikingJelly's LIFNode needs tau > 1, the profile gives tau = {spec.tau}")
            return sj_neuron.LIFNode(tau=float(spec.tau), decay_input=True, v_threshold=float(spec.threshold),
                                     v_reset=v_reset, surrogate_function=surrogate, detach_reset=bool(spec.detach_reset),
                                     step_mode=step_mode)
        return sj_neuron.IFNode(v_threshold=float(spec.threshold), v_reset=v_reset, surrogate_function=surrogate,
                                detach_reset=bool(spec.detach_reset), step_mode=step_mode)


def build(profile: Profile, step_mode: str = "m", timesteps: Optional[int] = None) -> Network:
    """The network of `profile`, or `UnsupportedProfile` naming the first layer PyTorch cannot run.
    `timesteps`: the columns a T-RevSNN network gets (the profile's T unless given)."""
    return Network(profile, step_mode, timesteps)


def optimizer_for(profile: Profile, parameters) -> torch.optim.Optimizer:
    """The profile's optimizer: SGD (momentum, weight decay as L2 on the gradient) or Adam."""
    spec = profile.optimizer
    params = list(parameters)
    if spec.type == "adam":
        return torch.optim.Adam(params, lr=spec.learning_rate, betas=(spec.beta1, spec.beta2), eps=spec.epsilon,
                                weight_decay=spec.weight_decay)
    return torch.optim.SGD(params, lr=spec.learning_rate, momentum=spec.momentum, weight_decay=spec.weight_decay)
