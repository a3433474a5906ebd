import json
import math
import os
import subprocess
import sys

import pytest
import torch
from conftest import RESIDUAL, ROOT, TINY, profile_path

from snnmem_torch import output
from snnmem_torch import profile as P
from snnmem_torch.measure import measure
from snnmem_torch.strategies import Trainer, reference_gradients

T, B = 2, 2


@pytest.fixture(scope="module")
def bptt():
    return measure(profile_path("cifarnet"), "bptt", batch=B, timesteps=T)


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    path = tmp_path_factory.mktemp("p") / "residual.yaml"
    path.write_text(RESIDUAL)
    return measure(str(path), "bptt")


def entries(m, layer):
    return next(e for e in m["savedByLayer"] if e["layer"] == layer)


def test_saved_bytes_are_the_sum_of_the_layers(bptt, residual):
    for m in (bptt, residual):
        assert m["savedBytes"] == sum(e["bytes"] for e in m["savedByLayer"])
        for e in m["savedByLayer"]:
            assert e["bytes"] == sum(t["bytes"] for t in e["tensors"] if t["role"] == "activation")
    assert bptt["savedBytes"] > 0


def test_layers_in_forward_order(bptt):
    prof = P.load(profile_path("cifarnet"))
    order = ["input"] + [l.path for l in prof.all_layers] + ["loss"]
    listed = [e["layer"] for e in bptt["savedByLayer"]]
    assert listed == [name for name in order if name in listed]
    assert "flatten15" not in listed and "input" not in listed  # they keep nothing
    assert all(e["tensors"] for e in bptt["savedByLayer"])


def test_conv_saves_its_input_over_t_times_b(bptt):
    prof = P.load(profile_path("cifarnet"))
    for layer in prof.all_layers:
        if layer.kind != "conv":
            continue
        tensors = entries(bptt, layer.path)["tensors"]
        saved_input = next(t for t in tensors if t["name"] == "ConvolutionBackward0._saved_input")
        assert saved_input["shape"] == [T * B, *layer.input_shape]
        assert saved_input["role"] == "activation"
        assert saved_input["bytes"] == T * B * math.prod(layer.input_shape) * 4
        weight = next(t for t in tensors if t["name"] == "ConvolutionBackward0._saved_weight")
        assert weight["role"] == "parameter"


def test_neuron_state_and_live_bytes(bptt):
    prof = P.load(profile_path("cifarnet"))
    neurons = [l for l in prof.all_layers if l.kind == "neuron"]
    assert [e["layer"] for e in bptt["neuronStateBytes"]] == [l.path for l in neurons]
    for e, l in zip(bptt["neuronStateBytes"], neurons):
        assert e["bytes"] == B * math.prod(l.input_shape) * 4
    trainer = Trainer(prof, "bptt", batch=B, timesteps=T)
    n_params = sum(p.numel() * 4 for p in trainer.net.parameters())
    assert bptt["liveAtStart"]["parameters"] == n_params
    assert bptt["liveAtStart"]["optimizerState"] == n_params  # SGD momentum buffers
    assert bptt["liveAtStart"]["gradients"] == 0 and bptt["liveAtStart"]["neuronState"] == 0
    assert bptt["liveAtStartBytes"] == sum(bptt["liveAtStart"].values())


def test_allocation_stream_and_peak(bptt):
    stream = bptt["allocations"]
    assert len(stream) == bptt["allocationCount"] > 0
    assert bptt["streamSumBytes"] == sum(e["bytes"] for e in stream) == 0  # steady state: all freed
    running, best = 0, 0
    for e in stream:
        running += e["bytes"]
        best = max(best, running)
    assert bptt["stepPeakBytes"] == bptt["liveAtStartBytes"] + best
    peak = bptt["peak"]
    assert sum(e["bytes"] for e in stream[:peak["index"] + 1]) == best
    assert peak["phase"] in ("forward", "backward") and peak["op"]
    assert {e["phase"] for e in stream} == {"forward", "backward", "optimizer", "reset"}
    forward_layers = {e["layer"] for e in stream if e["phase"] == "forward"}
    assert {"input", "conv1", "bn1", "lif1", "fc", "loss"} <= forward_layers
    assert {e["layer"] for e in stream if e["phase"] == "backward"} >= {"conv1", "lif4", "fc"}
    # every free matches an earlier allocation of the same address and size
    live = {}
    for e in stream:
        if e["bytes"] > 0:
            live[e["address"]] = e["bytes"]
        else:
            assert live.pop(e["address"]) == -e["bytes"]
    assert sum(e["bytes"] for e in bptt["liveAtPeak"]) == best


def test_residual_paths_and_kinds(residual):
    layers = {e["layer"]: e for e in residual["savedByLayer"]}
    assert "stage.0/block" not in layers                       # the add keeps nothing
    assert "gap" not in layers                                 # global pooling runs as a mean
    shortcut = layers["stage.1/block/shortcut/conv"]["tensors"]
    assert any(t["name"] == "ConvolutionBackward0._saved_input" for t in shortcut) or \
        any(a["layer"] == "stage.1/block/shortcut/conv" for e in layers.values() for t in e["tensors"] for a in t["alsoSavedBy"])
    pool = [t for t in layers["pool"]["tensors"] if t["dtype"] == "int64"]
    assert pool and pool[0]["name"] == "MaxPool2DWithIndicesBackward0._saved_result1"
    assert residual["liveAtStart"]["optimizerState"] > 0  # Adam's moments


def test_sltt_runs_one_timestep_at_a_time():
    m = measure(profile_path("cifarnet"), "sltt", batch=B, timesteps=T, stream=False)
    assert m["allocations"] is None and m["allocationsOmitted"] == "--no-stream"
    assert len(m["savedBytesPerTimestep"]) == T
    conv1 = next(t for t in entries(m, "conv1")["tensors"] if t["name"] == "ConvolutionBackward0._saved_input")
    assert conv1["shape"] == [B, 3, 32, 32] and conv1["role"] == "input"
    lif1 = entries(m, "lif1")["tensors"]
    assert all(t["shape"] == [B, 64, 32, 32] for t in lif1)
    assert m["savedBytes"] == sum(e["bytes"] for e in m["savedByLayer"])


def test_checkpoint_gradients_equal_bptt_without_batchnorm():
    tiny = P.parse(TINY, "tiny.yaml")
    for timesteps, segment in ((4, 2), (5, 2), (4, 1), (4, 4)):
        diff, reference = reference_gradients(tiny, 2, timesteps, segment)
        assert reference == "bptt" and diff < 1e-5


def test_checkpoint_with_batchnorm_equals_its_segmented_forward():
    prof = P.load(profile_path("digits"))
    diff, reference = reference_gradients(prof, 2, 4, 2)
    assert reference == "segmented" and diff < 1e-5
    diff, reference = reference_gradients(prof, 2, 2, 2)  # one segment: bptt itself
    assert reference == "bptt" and diff < 1e-5


def test_checkpoint_keeps_segment_inputs():
    m = measure(profile_path("digits"), "checkpoint", batch=B, timesteps=4, segment=2, verify=True)
    assert m["segment"] == 2 and m["verification"]["maxAbsGradDiff"] < 1e-5
    names = [t["name"] for e in m["savedByLayer"] for t in e["tensors"]]
    assert "checkpoint.saved_args[0]" in names
    lif1 = entries(m, "lif1")["tensors"]
    assert [t["name"] for t in lif1] == ["checkpoint.saved_args[1]"] and lif1[0]["shape"] == [B, 16, 8, 8]
    assert any(e["phase"] == "recompute" for e in m["allocations"])


def test_json_round_trip(bptt, tmp_path):
    path = tmp_path / "m.json"
    output.write(str(path), bptt)
    assert output.read(str(path)) == json.loads(json.dumps(bptt))
    assert output.read(str(path))["schema"] == "snnmem-torch-measurement/1"


def test_atomic_write(tmp_path):
    path = tmp_path / "out.json"
    output.write_atomic(str(path), "old\n")
    with pytest.raises(TypeError):
        output.write_atomic(str(path), 42)  # fails while writing: the old file stays whole
    assert path.read_text() == "old\n"
    output.write_atomic(str(path), "new\n")
    assert path.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.json"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_cli_exit_codes_and_module_entry(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)))
    refused = subprocess.run([sys.executable, "-m", "snnmem_torch", "measure", profile_path("trevsnn-cifar"),
                              "--strategy", "sltt"], capture_output=True, text=True, env=env)
    assert refused.returncode == 2 and "sltt does not apply to a T-RevSNN network" in refused.stderr
    bad = subprocess.run([sys.executable, "-m", "snnmem_torch", "measure", profile_path("cifarnet"), "--segment", "2"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "checkpoint strategy only" in bad.stderr
    out = tmp_path / "d.json"
    ok = subprocess.run([sys.executable, "-m", "snnmem_torch", "measure", profile_path("digits"), "--batch", "1",
                         "--timesteps", "1", "-o", str(out)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "step peak" in ok.stdout and ok.stderr == ""
    data = output.read(str(out))
    assert data["batch"] == 1 and data["timesteps"] == 1 and data["profile"] == "digits"
