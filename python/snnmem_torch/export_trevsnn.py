"""Export of a T-RevSNN network as the measure package builds it (`build.Network` with a `trevsnn:` layer):
the stem modules, run once on the images, and the `trevsnn:` construct read back from the columns.

torch.fx cannot trace it in multi-step mode (a column is one timestep, each with weights of its own,
and the stem encodes the images once), so its modules are read directly: every level's channels, stride
and block count, the blocks' kernel and expansion, the alphas and layer scales as one value each (a
profile holds one; trained values that differ are refused), the heads' classes and the turn-off neurons'
threshold and surrogate. A T-RevSNN model written another way is refused, naming the module.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .export import Entry, ExportError, _module_entries, _type_name


def is_builders_trev_network(model: nn.Module) -> bool:
    from .build import Network
    return isinstance(model, Network) and model.is_trev


def trev_entries(model: nn.Module, chw: tuple, timesteps: int, batch: int) -> list:
    """The stem's entries, then one `trevsnn` entry."""
    from .trevsnn import TRevNet
    modules = list(model.body)
    if not modules or not isinstance(modules[-1], TRevNet):
        raise ExportError("body", _type_name(model), "a T-RevSNN network must end in its columns", "build it from a profile")
    stem, trev = modules[:-1], modules[-1]
    if len(trev.columns) != timesteps:
        raise ExportError("body", _type_name(trev), f"it has {len(trev.columns)} columns, one per timestep, but T = "
                          f"{timesteps} was asked", f"export it with timesteps={len(trev.columns)}")
    entries = []
    x = torch.zeros(batch, *chw)
    with torch.no_grad():
        for index, module in enumerate(stem):
            y = module(x)
            # _module_entries reads [T, B, ...] shapes: the stem runs once, as one timestep.
            entries += _module_entries(f"body.{index}", module, (1, *x.shape), (1, *y.shape), 1, batch)
            x = y
    entries.append(_trev_entry(trev, tuple(x.shape[1:])))
    return entries


def _one_value(path: str, module: nn.Module, tensors: list, what: str) -> float:
    values = torch.cat([t.detach().reshape(-1) for t in tensors])
    # A float32 parameter holds 7 significant digits of the value it was made from (1e-6, not 9.99999997e-07).
    first = float(f"{float(values[0]):.7g}")
    if not torch.all(values == values[0]):
        raise ExportError(path, _type_name(module), f"its {what} differ ({float(values.min())} to {float(values.max())}); a "
                          f"profile's trevsnn has one {what.rstrip('s')} for all", "export the network before training it")
    return first


def _trev_entry(trev: nn.Module, stem_shape: tuple) -> Entry:
    from spikingjelly.activation_based import surrogate as sj_surrogate
    from .trevsnn import Scale, TurnOffNeuron

    column = trev.columns[0]
    levels, kernel, expansion = [], None, None
    for index, level in enumerate(column.levels):
        down_conv = level.down[1]
        fields = {"channels": int(level.channels), "blocks": len(level.blocks)}
        stride = int(down_conv.stride[0])
        if stride != (1 if index == 0 else 2):
            fields["stride"] = stride
        levels.append(fields)
        for block in level.blocks:
            main = block.main
            kernel = int(main[1].kernel_size[0])
            expansion = int(main[2].out_channels) // int(level.channels)
    alphas = [p for c in trev.columns for p in c.alphas]
    alpha = _one_value("columns", trev, alphas, "alphas")
    scales = [m.scale for m in trev.modules() if isinstance(m, Scale)]
    neurons = [m for m in trev.modules() if isinstance(m, TurnOffNeuron)]
    threshold = float(neurons[0].threshold)
    surrogate = neurons[0].surrogate
    if type(surrogate) not in (sj_surrogate.ATan, sj_surrogate.Sigmoid):
        raise ExportError("columns", _type_name(surrogate), "the profile language has the atan and sigmoid surrogates",
                          "use surrogate.ATan or surrogate.Sigmoid")
    kind = "atan" if type(surrogate) is sj_surrogate.ATan else "sigmoid"
    for neuron in neurons:
        if float(neuron.threshold) != threshold or type(neuron.surrogate) is not type(surrogate) or \
                float(neuron.surrogate.alpha) != float(surrogate.alpha):
            raise ExportError("columns", _type_name(neuron), "its turn-off neurons differ; a profile's trevsnn has one "
                              "setting for all of them", "give them one threshold and surrogate")
    head = column.head
    classes = int([m for m in head.modules() if isinstance(m, nn.Linear)][-1].out_features)
    fields = {"kernel": kernel if kernel is not None else 3, "expansion": expansion if expansion is not None else 4,
              "alpha": alpha}
    if scales:
        fields["layerScale"] = _one_value("columns", trev, scales, "layer scales")
    fields["classes"] = classes
    fields["neuron"] = {"type": "turnoff", "threshold": threshold, "surrogate": {"type": kind, "alpha": float(surrogate.alpha)}}
    fields["levels"] = levels
    return Entry("trevsnn", trev.path or "trev", fields, (classes,))
