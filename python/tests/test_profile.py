import json
import os
import shutil
import subprocess

import pytest
from conftest import BUNDLED, EXPRESSIBLE, RESIDUAL, ROOT, SNNMEM, TINY, TRANSFORMER, profile_path, assert_loader_fails_as_snnmem

from snnmem_torch import profile as P
from snnmem_torch.errors import ProfileError



@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_profile_loads(name):
    prof = P.load(profile_path(name))
    assert prof.name == name
    assert len(prof.sha256) == 64
    assert prof.classes >= 2


def test_paths_and_shapes_follow_the_swift_builder():
    r18 = P.load(profile_path("resnet18"))
    paths = [layer.path for layer in r18.all_layers]
    assert "stage1.0/block" in paths and "stage1.0/block/main/conv1" in paths and "stage1.0/sn_out" in paths
    assert "stage2_block0/shortcut/conv" in paths
    # the residual is listed before its branches (Swift's allLayers)
    assert paths.index("stage1_block0") < paths.index("stage1_block0/main/conv1")
    cif = P.load(profile_path("cifarnet"))
    assert [layer.path for layer in cif.layers][-2:] == ["flatten15", "fc"]
    assert cif.layers[-2].output_shape == (4096,)
    assert cif.layers[0].output_shape == (64, 32, 32)


@pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")
@pytest.mark.parametrize("name", EXPRESSIBLE + TRANSFORMER)
def test_layers_equal_snnmem_plan(name):
    out = subprocess.run([SNNMEM, "plan", profile_path(name), "--strategy", "bptt", "--layers", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    theirs = [(l["layer"], l["kind"], l["inputShape"], l["outputShape"]) for l in json.loads(out)["layers"]]
    mine = [(l.path, "avgpool" if l.kind == "globalavgpool" else l.kind, list(l.input_shape), list(l.output_shape))
            for l in P.load(profile_path(name)).all_layers]
    assert mine == theirs


def test_defaults_names_and_neuron_overrides(write_profile):
    prof = P.load(write_profile(RESIDUAL))
    paths = [l.path for l in prof.all_layers]
    assert paths[:4] == ["stem", "batchnorm1", "sn", "pool"]
    assert "stage.0/block/shortcut/conv" in paths and "stage.1/block/main/lif1" in paths
    sn = next(l for l in prof.all_layers if l.path == "sn").neuron
    assert (sn.type, sn.reset, sn.detach_reset, sn.surrogate, sn.surrogate_alpha) == ("if", "soft", True, "sigmoid", 4.0)
    lif = next(l for l in prof.all_layers if l.path == "stage.0/block/main/lif1").neuron
    assert (lif.type, lif.reset, lif.detach_reset) == ("lif", "hard", False)
    assert prof.optimizer.type == "adam" and prof.optimizer.momentum == 0.0
    tiny = P.parse(TINY, "tiny.yaml")
    assert tiny.name == "tiny" and tiny.optimizer.learning_rate == 0.1 and tiny.dtype == "float32"


@pytest.mark.parametrize("text,where,problem", [
    (TINY.replace("kernel: 3", "kernal: 3"), "tiny.yaml:7:32: error: layer 'conv'", "unknown key 'kernal' in conv (did you mean 'kernel'?)"),
    (TINY.replace("- flatten", "- flaten"), "tiny.yaml:9:5: error: layer 'flaten2'", "unknown layer kind 'flaten' (did you mean 'flatten'?)"),
    (TINY.replace("name: lif}", "name: lif, detachReset: yes}"), "layer 'lif'", "'detachReset' in neuron must be true or false"),
    (TINY.replace("name: lif}", "name: lif, tau: 0.5}"), "layer 'lif'", "a LIF time constant must be at least 1"),
    (TINY.replace("name: fc", "name: conv"), "layer 'conv'", "two layers in the same list are named 'conv'"),
    (TINY.replace("out: 2, ", ""), "layer 'conv'", "conv is missing the required key 'out'"),
    (TINY.replace("timesteps: 4", "timesteps: 4.0"), "tiny.yaml:3:", "'timesteps' in the profile must be a whole number"),
    (TINY.replace("  - flatten\n  - linear: {name: fc, out: 3}\n", ""), "layer 'lif'", "training needs class scores"),
])
def test_errors_name_file_place_and_layer(text, where, problem):
    with pytest.raises(ProfileError) as info:
        P.parse(text, "tiny.yaml")
    message = str(info.value)
    assert where in message and problem in message and "\n  fix: " in message


BAD = [TINY.replace("kernel: 3", "kernal: 3"), TINY.replace("- flatten", "- flaten"),
       TINY.replace("name: lif}", "name: lif, detachReset: yes}"), TINY.replace("name: lif}", "name: lif, tau: 0.5}"),
       TINY.replace("name: fc", "name: conv"), TINY.replace("timesteps: 4", "timesteps: 4.0"),
       TINY.replace("kernel: 3, padding: 1", "kernel: 3, padding: 3"), TINY.replace("out: 3}", "out: 1}"),
       TINY.replace("type: sgd, momentum: 0.9", "type: adam, momentum: 0.9"),
       TINY.replace("  - flatten\n", ""), TINY + "  - linear: {out: 4, in: 5}\n"]


@pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")
@pytest.mark.parametrize("index", range(len(BAD)))
def test_error_messages_equal_snnmem(index, write_profile):
    path = write_profile(BAD[index], "bad.yaml")
    assert_loader_fails_as_snnmem(path)


def test_missing_file():
    with pytest.raises(ProfileError, match="no such profile file"):
        P.load("/nonexistent/profile.yaml")
