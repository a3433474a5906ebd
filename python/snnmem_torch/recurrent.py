"""The recurrent spiking layer (`recurrent: {out, bias, neuron}`) in PyTorch + SpikingJelly:
    y_t = neuron(rc(cat(x_t, y_{t-1}))),   y_{-1} = 0,   rc = nn.Linear(in + out, out),
the computation of SpikingJelly's `layer.LinearRecurrentContainer` (which concatenates x_t and its previous
output and applies one linear layer; with a neuron as its sub-module it needs in == out), written as a
memory module of its own so that in != out works too (SHD: 700 inputs, 256 neurons). The weight is the
Swift layer's [out, in + out] `weight`, input columns first. Per timestep autograd keeps the concatenation
(the linear's input) and what the single-step neuron keeps.

Two states are carried across timesteps: the fed-back spikes y (this module's memory) and the neuron's v
(its own). `Network.neurons` lists both under the layer's path, this module first, so that SLTT detaches
both (s_{t-1} then enters each timestep as a constant: the recurrent weight gets only the current
timestep's term) and checkpointing passes both as explicit segment states. For that, `v` here names y.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from spikingjelly.activation_based import base


class RecurrentSpiking(base.MemoryModule):
    def __init__(self, in_features: int, out_features: int, bias: bool, neuron: nn.Module, step_mode: str = "m"):
        super().__init__()
        assert getattr(neuron, "step_mode", "s") == "s", "the neuron runs one timestep per call"
        self.step_mode = step_mode
        self.in_features = in_features
        self.out_features = out_features
        self.rc = nn.Linear(in_features + out_features, out_features, bias=bias)
        self.neuron = neuron
        self.register_memory("y", None)

    # The carried state as the training strategies name it (`module.v`, `get_reset_value("v")`).
    @property
    def v(self):
        return self.y

    @v.setter
    def v(self, value):
        self.y = value

    def get_reset_value(self, name: str) -> object:
        return super().get_reset_value("y" if name == "v" else name)

    def materialize_states(self, inputs, states, step_mode):
        x = inputs[0] if step_mode == "s" else inputs[0][0]
        y = states[0]
        if y is None:
            y = x.new_zeros(*x.shape[:-1], self.out_features)
        return (y, *states[1:])

    def single_step_functional_forward(self, inputs, states, **kwargs):
        x, y = inputs[0], states[0]
        y = self.neuron(self.rc(torch.cat((x, y), dim=-1)))
        return (y,), (y,)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, step_mode={self.step_mode}"
