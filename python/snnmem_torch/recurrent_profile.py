"""`recurrent: {out, in, bias, neuron}` in the profile loader, with the Swift loader's errors
(Sources/Profiles/LayerBuilder+Recurrent.swift): a linear map of [x_t ; s_{t-1}] and a LIF/IF neuron."""

from __future__ import annotations

RECURRENT_KEYS = ["out", "in", "bias", "neuron", "name"]


def build_recurrent(builder, p, inp: tuple, path: str, location: tuple, make):
    from .profile import _loc, _shape_text, integer, parse_neuron
    out = p.int("out", example="256")
    bias = p.bool("bias", True)
    if len(inp) != 1:
        raise builder.fail(f"recurrent needs flat features per timestep, but receives {_shape_text(inp)}",
                           "insert `- flatten` before it, or use a sequence input `input: {features: N, perTimestep: true}`",
                           path, location)
    in_node = p.value("in")
    if in_node is not None:
        declared = integer(in_node, "in", 1, builder.file, path, "recurrent")
        if declared != inp[0]:
            raise builder.fail(f"recurrent declares {declared} input features but receives {inp[0]}",
                               f"set `in: {inp[0]}`, remove `in:` to infer it, or change the layers before it",
                               path, _loc(in_node))
    neuron_node = p.value("neuron")
    spec = parse_neuron(neuron_node, builder.default_neuron, builder.file, path) if neuron_node is not None \
        else builder.default_neuron
    p.reject_unknown_keys(RECURRENT_KEYS)
    if spec.type == "li":
        raise p.error("a recurrent layer feeds its spikes back, but an li neuron (a leaky integrator) never fires",
                      "use `neuron: {type: lif}` (or if) inside `recurrent:`, and put the li readout after it", neuron_node)
    if spec.type not in ("lif", "if"):
        raise p.error(f"a recurrent layer's neuron must be lif or if, found {spec.type}",
                      "use `neuron: {type: lif}` or `neuron: {type: if}`", neuron_node)
    return make((out,), neuron=spec, params=dict(in_features=inp[0], out_features=out, bias=bias))
