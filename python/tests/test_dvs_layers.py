"""dropout, adaptiveavgpool, voting and the plif neuron: the loader as Swift reads them (shapes and errors), what
PyTorch + SpikingJelly keep for them on CUDA (fake device) and on the CPU (measured against the plan),
and their export from SpikingJelly modules."""

import json
import os
import subprocess

import pytest
import torch
import torch.nn as nn
from conftest import ROOT, SNNMEM, assert_loader_fails_as_snnmem, planned_and_measured_on_cpu, saved_by_layer

from snnmem_torch import profile as P
from snnmem_torch.export import ExportError, export_profile

from spikingjelly.activation_based import layer, neuron, surrogate  # noqa: E402  (after torch)

needs_snnmem = pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")

# Uneven (8x8 -> 3x5) and upsampling (3x5 -> 4x6) adaptive pooling, two dropouts, voting: small enough
# to measure in a second.
DVS = """
name: dvs-tiny
input: {channels: 2, height: 8, width: 8}
timesteps: 3
batch: 2
neuron: {type: lif, tau: 2.0, detachReset: true}
layers:
  - conv: {out: 16, kernel: 3, padding: 1}
  - batchnorm
  - neuron
  - adaptiveavgpool: {output: [3, 5]}
  - adaptiveavgpool: {name: up, output: [4, 6]}
  - flatten
  - dropout: {p: 0.5}
  - linear: {out: 20}
  - neuron: {name: plif, type: plif, tau: 3.0, surrogate: {type: sigmoid, alpha: 4.0}}
  - dropout: {name: drop2, p: 0.3}
  - linear: {out: 20}
  - voting: {size: 2}
"""


def test_shapes_follow_the_swift_builder(write_profile):
    prof = P.load(write_profile(DVS))
    shapes = {l.path: (l.kind, l.input_shape, l.output_shape) for l in prof.all_layers}
    assert shapes["adaptiveavgpool3"] == ("adaptiveavgpool", (16, 8, 8), (16, 3, 5))
    assert shapes["up"] == ("adaptiveavgpool", (16, 3, 5), (16, 4, 6))
    assert shapes["dropout6"] == ("dropout", (384,), (384,))
    assert shapes["voting11"] == ("voting", (20,), (10,))
    assert prof.classes == 10


@needs_snnmem
def test_layers_equal_snnmem_plan(write_profile):
    path = write_profile(DVS)
    out = subprocess.run([SNNMEM, "plan", path, "--strategy", "bptt", "--layers", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    theirs = [(l["layer"], l["kind"], l["inputShape"], l["outputShape"]) for l in json.loads(out)["layers"]]
    mine = [(l.path, l.kind, list(l.input_shape), list(l.output_shape)) for l in P.load(path).all_layers]
    assert mine == theirs


BAD = [DVS.replace("p: 0.5", "p: 1.0"), DVS.replace("p: 0.5", "p: half"), DVS.replace("output: [3, 5]", "output: [3, 5, 7]"),
       DVS.replace("output: [3, 5]", "output: [0, 5]"), DVS.replace("output: [3, 5]", "size: 3"),
       DVS.replace("voting: {size: 2}", "voting: {size: 3}"), DVS.replace("tau: 3.0", "tau: 1.0"),
       DVS.replace("detachReset: true}", "detachReset: true, decayInput: false}"), DVS.replace("  - flatten\n", "  - flatten\n  - adaptiveavgpool: {output: 2}\n")]


@needs_snnmem
@pytest.mark.parametrize("index", range(len(BAD)))
def test_error_messages_equal_snnmem(index, write_profile):
    path = write_profile(BAD[index], "bad.yaml")
    assert_loader_fails_as_snnmem(path)


def test_cuda_dropout_saves_its_one_mask_and_pools_save_their_input():
    from snnmem_torch import cuda_meta as cm
    with cm.fake_cuda():
        drop = layer.Dropout(0.5, step_mode="m")
        x = torch.empty((4, 2, 8, 4, 4), requires_grad=True)
        tr = cm.trace(lambda: drop(x), {"x_seq": x}, {"m": drop})
        # One [B, ...] mask for all T, made by native_dropout (its bool keep-mask transient), saved by the mul.
        assert [(s.slot, s.shape, s.dtype) for s in tr.saved] == [("other", (2, 8, 4, 4), torch.float32)]
        assert [(a.op, a.dtype, not a.alive) for a in tr.forward][:3] == [
            ("aten.ones_like", torch.float32, True), ("aten.native_dropout", torch.float32, False),
            ("aten.native_dropout", torch.bool, True)]
        pool = layer.AdaptiveAvgPool2d((3, 5), step_mode="m")
        x = torch.empty((4, 2, 8, 8, 8), requires_grad=True)
        tr = cm.trace(lambda: pool(x), {"x_seq": x}, {"m": pool})
        assert [(s.slot, s.origin.split(":")[0]) for s in tr.saved] == [("self", "input")]
        vote = layer.VotingLayer(4, step_mode="m")
        x = torch.empty((4, 2, 20), requires_grad=True)
        tr = cm.trace(lambda: vote(x), {"x_seq": x}, {"m": vote})
        assert [(s.slot, s.origin.split(":")[0]) for s in tr.saved] == [("self", "input")]


def test_cuda_plif_saves_what_lif_saves_and_its_weight():
    from snnmem_torch import cuda_meta as cm
    with cm.fake_cuda():
        node = neuron.ParametricLIFNode(init_tau=2.0, surrogate_function=surrogate.Sigmoid(), step_mode="m")
        x = torch.empty((4, 2, 8, 4, 4), requires_grad=True)
        tr = cm.trace(lambda: node(x), {"x_seq": x}, {"n": node})
    # h_seq (new), x_seq (the input), v_init (new), w (the parameter): the registered op's save_for_backward.
    assert [(s.shape, s.origin.split(":")[0]) for s in tr.saved] == [
        ((4, 2, 8, 4, 4), "new"), ((4, 2, 8, 4, 4), "input"), ((2, 8, 4, 4), "new"), ((), "parameter")]


@needs_snnmem
@pytest.mark.parametrize("strategy", ["bptt", "checkpoint", "sltt"])
def test_measured_saved_bytes_and_peak_equal_the_plan(strategy, write_profile):
    path = write_profile(DVS)
    planned, measured = planned_and_measured_on_cpu(path, strategy)
    if strategy == "bptt":  # checkpoint and sltt count saved tensors per segment or timestep, not summed
        assert saved_by_layer(measured) == \
            saved_by_layer(planned)
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


@needs_snnmem
def test_float16_autocast_saves_what_the_plan_says(write_profile):
    """Under autocast v is half, so PLIF runs SpikingJelly's plain reference loop, which computes q = sigmoid(w)
    again at every timestep (each saved); the masks and pools save half tensors."""
    from snnmem_torch.measure import measure
    path = write_profile(DVS)
    planned = json.loads(subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", "pytorch-cpu",
                                         "--strategy", "bptt", "--dtype", "float16"], capture_output=True, text=True,
                                        check=True).stdout)["strategies"][0]
    measured = measure(path, "bptt", stream=False, dtype="float16")
    assert saved_by_layer(measured) == \
        saved_by_layer(planned)
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


class DVSModule(nn.Module):
    def __init__(self, dropout=None):
        super().__init__()
        sn = dict(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True)
        self.body = nn.Sequential(layer.Conv2d(2, 4, 3, padding=1, bias=False), layer.BatchNorm2d(4), neuron.LIFNode(**sn),
                                  layer.AdaptiveAvgPool2d((3, 5)), layer.Flatten(),
                                  dropout if dropout is not None else layer.Dropout(0.25),
                                  layer.Linear(60, 20), neuron.ParametricLIFNode(init_tau=4.0, decay_input=False, v_reset=None),
                                  layer.VotingLayer(2))

    def forward(self, x):
        return self.body(x)


def test_spikingjelly_dropout_pooling_and_voting_export(tmp_path):
    out = str(tmp_path / "dvs.yaml")
    text = export_profile(DVSModule(), (2, 8, 8), timesteps=3, batch=2, name="dvs", output=out)
    assert "  - adaptiveavgpool: {name: body.3, output: [3, 5]}" in text
    assert "  - dropout: {name: body.5, p: 0.25}" in text
    assert "  - voting: {name: body.8, size: 2}" in text
    # ParametricLIFNode: tau from its w (1 / sigmoid(w)), decay_input, soft reset, its default Sigmoid(4) surrogate.
    assert ("  - neuron: {name: body.7, type: plif, tau: 4.0, decayInput: false, reset: soft, detachReset: false, "
            "surrogate: {type: sigmoid, alpha: 4.0}}") in text
    loaded = P.load(out)
    assert loaded.classes == 10 and loaded.layers[7].neuron.type == "plif" and not loaded.layers[7].neuron.decay_input


@pytest.mark.parametrize("dropout,why", [
    (layer.SeqToANNContainer(nn.Dropout(0.5)), "draws a new mask for every timestep"),
    (layer.Dropout2d(0.5, step_mode="m"), "zeroes whole channels"),
])
def test_other_dropouts_are_refused(dropout, why):
    with pytest.raises(ExportError, match=why):
        export_profile(DVSModule(dropout), (2, 8, 8), timesteps=3, batch=2)


# ----------------------------------------------------------------------------------------------
# Event frames ([T, B, C, H, W]) and SpikingJelly's DVS classification networks


@needs_snnmem
@pytest.mark.parametrize("strategy", ["bptt", "sltt", "checkpoint"])
def test_event_frames_are_fed_as_they_are(strategy, write_profile):
    from snnmem_torch.measure import measure
    path = write_profile(DVS.replace("input: {channels: 2, height: 8, width: 8}",
                                     "input: {channels: 2, height: 8, width: 8, perTimestep: true}"))
    assert P.load(path).input_per_timestep
    planned = json.loads(subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", "pytorch-cpu",
                                         "--strategy", strategy, "--events"], capture_output=True, text=True,
                                        check=True).stdout)["strategies"][0]
    # No repeated copy of the input: the first conv keeps the [T, B, ...] batch itself.
    assert not [e for e in planned["events"] if e.get("layer") == "input" and e.get("name") == "x_seq"]
    measured = measure(path, strategy, stream=False)
    if strategy == "bptt":
        assert "input" not in {e["layer"] for e in measured["savedByLayer"] if e["bytes"]}
        assert saved_by_layer(measured) == \
            saved_by_layer(planned)
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


def saved_by_frames(model: nn.Module, timesteps: int, batch: int, shape: tuple, classes: int) -> int:
    """What autograd saves in a bptt forward of `model` on event frames [T, B, ...] and the cross-entropy of the
    mean over time, storages counted once; parameters, buffers, frames and labels left out (as measured)."""
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional
    functional.set_step_mode(model, "m")
    model.train()
    torch.manual_seed(0)
    x, y = torch.rand(timesteps, batch, *shape), torch.randint(0, classes, (batch,))
    skip = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), x, y]}
    seen, keep = {}, []

    def pack(t):
        keep.append(t)
        if t.untyped_storage().data_ptr() not in skip:
            seen.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x).mean(0), y)
    functional.reset_net(model)
    return sum(seen.values())


@needs_snnmem
@pytest.mark.parametrize("name", ["CIFAR10DVSNet", "DVSGestureNet"])
def test_spikingjelly_dvs_networks_export_and_plan_what_they_save(name, tmp_path):
    """SpikingJelly's classification networks for CIFAR10-DVS and DVS128 Gesture (parametric_lif_net), with
    ParametricLIF neurons, on 2x128x128 event frames; 16 channels instead of 128 keep the test fast."""
    from spikingjelly.activation_based.model import parametric_lif_net
    from snnmem_torch.measure import measure
    model = getattr(parametric_lif_net, name)(channels=16, spiking_neuron=neuron.ParametricLIFNode,
                                              surrogate_function=surrogate.ATan(), detach_reset=True)
    out = str(tmp_path / f"{name}.yaml")
    text = export_profile(model, (2, 128, 128), timesteps=2, batch=2, name=name, output=out, input_per_timestep=True)
    assert "perTimestep: true" in text and "type: plif" in text and "voting: {name: conv_fc" in text
    assert text.count("dropout: {name: conv_fc.") == 2
    planned = json.loads(subprocess.run([SNNMEM, "plan", out, "--format", "json", "--runtime", "pytorch-cpu",
                                         "--strategy", "bptt"], capture_output=True, text=True,
                                        check=True).stdout)["strategies"][0]
    classes = 10 if name == "CIFAR10DVSNet" else 11
    assert saved_by_frames(model, 2, 2, (2, 128, 128), classes) == planned["savedTensorBytes"]
    measured = measure(out, "bptt", stream=False)
    assert saved_by_layer(measured) == \
        saved_by_layer(planned)
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


@needs_snnmem
@pytest.mark.parametrize("frames", [False, True])
def test_cuda_plan_saves_what_fake_cuda_autograd_saves(frames, write_profile):
    """The pytorch-cuda plan of the DVS layers and the PLIF neuron against SpikingJelly's CUDA autograd on
    fake CUDA tensors, layer by layer: new saved tensors plus the kept input."""
    from snnmem_torch import cuda_meta as cm
    text = DVS if not frames else DVS.replace("width: 8}", "width: 8, perTimestep: true}")
    path = write_profile(text)
    plan = json.loads(subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", "pytorch-cuda", "--strategy",
                                      "bptt", "--timesteps", "2", "--batch", "2"], capture_output=True, text=True,
                                     check=True).stdout)["strategies"][0]
    planned = {e["layer"]: e["bytes"] for e in plan["savedByLayer"]}
    kinds = {layer.path: layer.kind for layer in P.load(path).all_layers}
    checked = 0
    for name, trace in cm.network_traces(path, T=2, B=2):
        if kinds.get(name) in ("dropout", "adaptiveavgpool", "voting", "neuron"):
            kept = sum(s.nbytes for s in trace.saved if s.origin.startswith("input"))
            assert trace.saved_new_bytes() + kept == planned[name], name
            checked += 1
    assert checked == 7


BAD_FILES = ["dropout-p-one", "dropout-in-reversible", "adaptiveavgpool-three-sizes", "adaptiveavgpool-after-flatten",
             "voting-indivisible", "plif-tau-one", "decay-input-on-lif", "per-timestep-trevsnn", "per-timestep-not-bool"]


@needs_snnmem
@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_profiles_fail_as_in_swift(name):
    path = os.path.join(ROOT, "Tests", "ProfilesTests", "BadProfiles", name + ".yaml")
    assert_loader_fails_as_snnmem(path)
