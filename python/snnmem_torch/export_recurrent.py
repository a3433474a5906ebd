"""Export of the recurrent layer and the leaky integrator (`recurrent:` and `neuron: {type: li}`):
the measure package's `RecurrentSpiking` and `LeakyIntegrator`, and SpikingJelly's
`layer.LinearRecurrentContainer` around a LIF/IF node (its `rc` is the profile's [out, in + out] weight;
with a neuron inside, in == out). A container around anything else (a linear and a neuron: two linear maps
inside one recurrence) is refused with what the profile's layer is."""

from __future__ import annotations

from typing import Optional


def recurrent_entries(path: str, module, inner: tuple, outer: tuple, entry_type, neuron_spec, error_type) -> Optional[list]:
    """Entries for `module`, or None when it is none of these."""
    from spikingjelly.activation_based import layer as sj_layer
    from spikingjelly.activation_based import neuron as sj_neuron

    from .leaky_integrator import LeakyIntegrator
    from .profile import NeuronSpec
    from .recurrent import RecurrentSpiking

    kind = f"{type(module).__module__}.{type(module).__qualname__}"
    if isinstance(module, LeakyIntegrator):
        return [entry_type("neuron", path, shape=outer, neuron=NeuronSpec(type="li", tau=float(module.tau)))]
    if isinstance(module, (RecurrentSpiking, sj_layer.LinearRecurrentContainer)):
        inside = module.neuron if isinstance(module, RecurrentSpiking) else module.sub_module
        if not isinstance(inside, sj_neuron.BaseNode):
            raise error_type(path, kind, f"recurs around a {type(inside).__name__}; a profile's recurrent layer is one "
                             "linear map of [x_t ; s_(t-1)] into a LIF/IF neuron", "use LinearRecurrentContainer("
                             "LIFNode(), n, n) after an nn.Linear, or write `recurrent:` by hand")
        if len(inner) != 1:
            raise error_type(path, kind, f"runs on a {list(inner)} input; a profile's recurrent layer takes flat features",
                             "flatten before it")
        out = int(module.rc.out_features)
        fields = {"out": out}
        if module.rc.bias is None:
            fields["bias"] = False
        spec = neuron_spec(path + ".neuron", inside)
        return [entry_type("recurrent", path, fields, outer, neuron=spec)]
    return None


def keep_inner_neurons_single_step(net) -> None:
    """`functional.set_step_mode(net, 'm')` reaches the neuron inside a recurrence too; it runs one timestep
    per call of its container, so it goes back to 's'."""
    from spikingjelly.activation_based import layer as sj_layer

    from .recurrent import RecurrentSpiking
    for m in net.modules():
        if isinstance(m, RecurrentSpiking):
            m.neuron.step_mode = "s"
        elif isinstance(m, sj_layer.LinearRecurrentContainer):
            m.sub_module.step_mode = "s"


def recurrence_neurons(model) -> set:
    """The ids of the neurons inside a recurrence (and their submodules), which run single-step whatever the
    network's step mode."""
    from spikingjelly.activation_based import layer as sj_layer

    from .recurrent import RecurrentSpiking
    out = set()
    for m in model.modules():
        if isinstance(m, (RecurrentSpiking, sj_layer.LinearRecurrentContainer)):
            inner = m.neuron if isinstance(m, RecurrentSpiking) else m.sub_module
            out.update(id(sub) for sub in inner.modules())
    return out
