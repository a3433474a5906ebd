"""The newer layers under float16/bfloat16 autocast on CUDA, checked on fake CUDA tensors (snnmem_torch/cuda_meta.py):
what autograd saves per layer, against the pytorch-cuda plan. The CPU's side is held by the committed fixtures
(Tests/PlannerTests/Fixtures/pytorch/*-float16.json, *-bfloat16.json)."""

import json
import os
import subprocess

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from conftest import ROOT, SNNMEM  # noqa: E402

from snnmem_torch import cuda_meta as cm  # noqa: E402

FIXTURE_PROFILES = os.path.join(ROOT, "Tests", "PlannerTests", "Fixtures", "pytorch", "profiles")
HALF = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def _planned_saved(path: str, dtype: str, T: int, B: int) -> dict:
    plan = json.loads(subprocess.run([SNNMEM, "plan", path, "--runtime", "pytorch-cuda", "--strategy", "bptt", "--dtype", dtype,
                                      "--timesteps", str(T), "--batch", str(B), "--format", "json"],
                                     capture_output=True, text=True, check=True).stdout)
    return {e["layer"]: e["bytes"] for e in plan["strategies"][0]["savedByLayer"]}


@pytest.mark.skipif(not os.path.exists(SNNMEM), reason="needs the Swift CLI (swift build -c release)")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_adaptive_lif_under_autocast_keeps_half_h_and_b(dtype):
    """The adaptive LIF's autograd function has no custom_fwd: under autocast it runs in its half input's dtype
    and saves h and b in it ([T, B, ...] each), nothing else; the plan attributes the same bytes."""
    path = os.path.join(FIXTURE_PROFILES, "alif-conv.yaml")
    T, B = 2, 2
    traces = dict(cm.network_traces(path, T=T, B=B, autocast=HALF[dtype]))
    planned = _planned_saved(path, dtype, T, B)
    for name in ("alif1", "alif2"):
        alif = traces[name]
        assert alif.output[1] == HALF[dtype]
        assert sorted((s.shape, s.dtype) for s in alif.saved) == [((T, B, 16, 8, 8), HALF[dtype])] * 2
        assert planned[name] == sum(s.nbytes for s in alif.saved if s.is_new) == 2 * T * B * 16 * 8 * 8 * 2


# The recurrent layer on the network's float32 input, and after a linear layer (a half input).
REC_ON_INPUT = """
input: {features: 12, perTimestep: true}
timesteps: 3
batch: 2
neuron: {type: lif, tau: 2.0, threshold: 0.5}
layers:
  - recurrent: {name: rec1, out: 8}
  - linear: {name: fc, out: 4}
  - neuron: {name: readout, type: li, tau: 2.0}
"""
REC_AFTER_LINEAR = REC_ON_INPUT.replace("layers:\n", "layers:\n  - linear: {name: fc0, out: 10}\n")


@pytest.mark.skipif(not os.path.exists(SNNMEM), reason="needs the Swift CLI (swift build -c release)")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("variant", ["on_input", "after_linear"])
def test_recurrent_layer_under_autocast_keeps_what_the_plan_keeps(variant, dtype, tmp_path):
    """Under autocast the single-step neuron's half input leaves SpikingJelly's fused op for its step loop.
    On the float32 input the concatenation is float32 and addmm keeps its half copy; the weight's one cast
    is kept from the second timestep on (the first concatenation needs no gradient). On a half input the
    concatenation is half and kept itself, with the weight's cast. The step loop keeps h - threshold, h and
    1 - s per timestep (hard reset); the last timestep's h and 1 - s belong to the neuron's final v, which
    backward from the loss never visits, so the trace does not list them: the plan counts them."""
    path = tmp_path / "rec.yaml"
    path.write_text(REC_ON_INPUT if variant == "on_input" else REC_AFTER_LINEAR)
    T, B, inputs, out = 3, 2, (12 if variant == "on_input" else 10), 8
    half = HALF[dtype]
    rec = dict(cm.network_traces(str(path), T=T, B=B, autocast=half))["rec1"]
    assert "sj_lif.forward" not in rec.ops and rec.output[1] == half
    assert all(s.dtype == half for s in rec.saved if s.origin != "cpu-scalar")
    concatenations = [s for s in rec.saved if s.node == "AddmmBackward0" and s.slot == "mat1"]
    weights = [s for s in rec.saved if s.node == "AddmmBackward0" and s.slot == "mat2"]
    expected_origin = "new:aten._to_copy" if variant == "on_input" else "new:aten.cat"
    assert [(s.shape, s.origin) for s in concatenations] == [((B, inputs + out), expected_origin)] * T
    assert len(weights) == (T - 1 if variant == "on_input" else T)
    assert {(s.shape, s.origin) for s in weights} == {((inputs + out, out), "new:aten._to_copy")}  # the transposed view
    neuron = [s for s in rec.saved if s.is_new and s.node != "AddmmBackward0"]
    assert len(neuron) == 3 * (T - 1) + 1
    step_bytes = B * out * half.itemsize
    traced = sum(s.nbytes for s in concatenations) + weights[0].nbytes + sum(s.nbytes for s in neuron)
    assert _planned_saved(str(path), dtype, T, B)["rec1"] == traced + 2 * step_bytes


@pytest.mark.skipif(not os.path.exists(SNNMEM), reason="needs the Swift CLI (swift build -c release)")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_conv1d_windows_and_adaptive_lif_under_autocast_on_cuda(dtype):
    """alif-conv1d on fake CUDA under autocast: each windowed conv1d (kernel 5, a strided kernel 3, a grouped
    kernel 3) keeps half copies of its weight and of a float32 input (the first one's, the signal) or its half
    input itself, as a conv2d does; every layer's saved bytes equal the pytorch-cuda plan's."""
    path = os.path.join(FIXTURE_PROFILES, "alif-conv1d.yaml")
    T, B = 2, 2
    half = HALF[dtype]
    traces = dict(cm.network_traces(path, T=T, B=B, autocast=half))
    conv1 = {s.slot: s for s in traces["conv1"].saved}
    assert (conv1["input"].dtype, conv1["input"].origin) == (half, "new:aten._to_copy")
    assert (conv1["weight"].dtype, conv1["weight"].origin) == (half, "new:aten._to_copy")
    conv3 = {s.slot: s for s in traces["conv3"].saved}
    assert (conv3["input"].dtype, conv3["input"].origin) == (half, "input:input")  # the spikes are already half
    planned = _planned_saved(path, dtype, T, B)
    for name in ("conv1", "conv2", "conv3", "alif1", "alif2", "alif3"):
        # a layer's new saved tensors, plus a half spike input it keeps (a view of its predecessor's output)
        kept = sum(s.nbytes for s in traces[name].saved if s.is_new or s.origin == "input:input")
        assert planned[name] == kept, name
