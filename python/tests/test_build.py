import pytest
import torch
from conftest import EXPRESSIBLE, RESIDUAL, TINY, profile_path

from snnmem_torch import profile as P
from snnmem_torch.build import build
from snnmem_torch.errors import UnsupportedProfile


@pytest.mark.parametrize("name", EXPRESSIBLE)
def test_builds_every_expressible_bundled_profile(name):
    prof = P.load(profile_path(name))
    net = build(prof)
    assert list(net.layers) == [layer.path for layer in prof.all_layers]
    for layer in prof.all_layers:
        module = net.layers[layer.path]
        if layer.kind == "conv":
            p = layer.params
            assert module.weight.shape == (p["out_channels"], p["in_channels"] // p["groups"], p["kernel"], p["kernel"])
            assert (module.bias is not None) == p["bias"]
        if layer.kind in ("conv", "batchnorm", "neuron", "avgpool", "maxpool", "flatten"):
            assert module.step_mode == "m"


@pytest.mark.parametrize("change,layer,why", [
    (("name: lif}", "name: lif, type: turnoff}"), "lif", "turn-off neuron"),
    (("name: lif}", "name: lif, tau: 1.0}"), "lif", "LIFNode needs tau > 1"),
    (("  - flatten", "  - scale: {name: s}\n  - flatten"), "s", "scale"),
])
def test_refuses_kinds_by_layer(change, layer, why):
    prof = P.parse(TINY.replace(*change), "tiny.yaml")
    with pytest.raises(UnsupportedProfile, match=why) as info:
        build(prof)
    assert f"layer '{layer}'" in str(info.value)


def test_forward_shapes_multi_and_single_step():
    prof = P.parse(RESIDUAL, "residual.yaml")
    x = torch.rand(2, 3, 8, 8)
    multi = build(prof, "m")
    assert multi(x.unsqueeze(0).repeat(2, 1, 1, 1, 1)).shape == (2, 2, 3)
    single = build(prof, "s")
    assert single(x).shape == (2, 3)
    sn = multi.layers["sn"]
    assert sn.v_reset is None and sn.detach_reset is True
    assert type(multi.layers["stage.0/block/main/lif1"]).__name__ == "LIFNode"
    assert type(multi.layers["gap"]).__name__ == "AdaptiveAvgPool2d"
