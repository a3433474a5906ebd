"""Grouped and depthwise conv2d outside T-RevSNN: the builder's modules for the test profile, the export of
SpikingJelly's / PyTorch's grouped Conv2d read back and planned, a user's model checked against its export on the
CPU, and what the pytorch-cuda plan says each grouped conv keeps against fake-CUDA autograd. The CPU is held to the
plan by the committed fixtures (Tests/PlannerTests/Fixtures/pytorch/grouped-conv-*.json,
bash scripts/pytorch-fixtures.sh grouped-conv)."""

import json
import os
import subprocess

import pytest
import torch.nn as nn
from conftest import ROOT, SNNMEM

from snnmem_torch import profile as P
from snnmem_torch.build import build
from snnmem_torch.export import export_profile

from spikingjelly.activation_based import layer, neuron  # noqa: E402  (after torch)

needs_snnmem = pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")
PROFILE = os.path.join(ROOT, "Tests", "PlannerTests", "Fixtures", "pytorch", "profiles", "grouped-conv.yaml")
GROUPED = {"dw1": 16, "g4": 4, "dw2": 32, "pw2": 2}


def test_builder_makes_the_profiles_grouped_convs():
    net = build(P.load(PROFILE))
    got = {p: (m.groups, m.kernel_size, m.stride) for p, m in net.layers.items() if isinstance(m, nn.Conv2d) and m.groups > 1}
    assert got == {"dw1": (16, (3, 3), (1, 1)), "g4": (4, (3, 3), (2, 2)), "dw2": (32, (3, 3), (2, 2)), "pw2": (2, (1, 1), (1, 1))}
    assert all(isinstance(net.layers[p], layer.Conv2d) and net.layers[p].step_mode == "m" for p in GROUPED)


class MobileStem(nn.Module):
    """A dense stem, a depthwise 3x3, a pointwise 1x1 and a groups-4 3x3 with stride 2, SpikingJelly's multi-step
    layers (plain nn.Conv2d in layer.SeqToANNContainer for the depthwise one)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            layer.Conv2d(3, 16, 3, padding=1, bias=False), layer.BatchNorm2d(16), neuron.LIFNode(),
            layer.SeqToANNContainer(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)), neuron.LIFNode(),
            layer.Conv2d(16, 32, 1, bias=False), neuron.LIFNode(),
            layer.Conv2d(32, 32, 3, stride=2, padding=1, groups=4, bias=False), neuron.LIFNode(),
            layer.Flatten(), layer.Linear(32 * 4 * 4, 10))

    def forward(self, x):
        return self.body(x)


@needs_snnmem
def test_export_reads_grouped_convs_back_and_plans_them(tmp_path):
    out = str(tmp_path / "g.yaml")
    text = export_profile(MobileStem(), (3, 8, 8), timesteps=2, batch=2, name="g", output=out)
    assert "groups: 16" in text and "groups: 4" in text
    loaded = P.load(out)
    convs = [l for l in loaded.all_layers if l.kind == "conv"]
    assert [c.params["groups"] for c in convs] == [1, 16, 1, 4]
    assert [c.output_shape for c in convs] == [(16, 8, 8), (16, 8, 8), (32, 8, 8), (32, 4, 4)]
    for runtime in ("pytorch-cpu", "pytorch-cuda"):
        plan = json.loads(subprocess.run([SNNMEM, "plan", out, "--format", "json", "--runtime", runtime, "--strategy", "bptt"],
                                         capture_output=True, text=True, check=True).stdout)
        assert plan["strategies"][0]["peakBytes"] > 0 and not plan["notApplicable"], runtime


@needs_snnmem
def test_check_measures_a_users_grouped_model_as_its_export_plans(tmp_path):
    """`snnmem-torch check` on the model above (bptt, the CPU): its export plans what the model saves (equal) and
    its step peak within 1%."""
    from snnmem_torch.check import check_model
    result = check_model(MobileStem(), (3, 8, 8), timesteps=2, batch=2, strategy="bptt",
                         profile_out=str(tmp_path / "g.yaml"), binary=SNNMEM)
    assert result.agrees, [(r.layer, r.predicted_bytes, r.measured_bytes) for r in result.rows]
    assert result.measured_saved_bytes == result.predicted_saved_bytes > 0


@needs_snnmem
def test_cuda_plan_saves_what_fake_cuda_autograd_saves():
    """Each grouped conv keeps its input (cuDNN's grouped convolution saves input and weight, no new tensor), as a
    dense one; every layer's planned saved bytes equal what fake-CUDA autograd saves."""
    from snnmem_torch import cuda_meta as cm
    plan = json.loads(subprocess.run([SNNMEM, "plan", PROFILE, "--format", "json", "--runtime", "pytorch-cuda", "--strategy",
                                      "bptt", "--timesteps", "2", "--batch", "2"], capture_output=True, text=True,
                                     check=True).stdout)["strategies"][0]
    planned = {e["layer"]: e["bytes"] for e in plan["savedByLayer"]}
    layers = {l.path: l for l in P.load(PROFILE).all_layers}
    checked = 0
    for name, trace in cm.network_traces(PROFILE, T=2, B=2):
        if name not in GROUPED:
            continue
        kept = sum(s.nbytes for s in trace.saved if s.origin.startswith("input"))
        new = sum(s.nbytes for s in trace.saved if s.is_new)
        c, h, w = layers[name].input_shape
        assert new == 0 and kept == 2 * 2 * c * h * w * 4 == planned[name], name
        assert any(s.origin.startswith("parameter") for s in trace.saved), name
        checked += 1
    assert checked == 4


@needs_snnmem
def test_unmeasured_cases_are_refused_naming_the_layer():
    """A 5x5 depthwise kernel on pytorch-cpu and bfloat16 autocast on pytorch-cuda: refused, the layer named."""
    text = open(PROFILE).read()
    for args, edit, words in (
            (["--runtime", "pytorch-cpu"], ("{name: dw1, out: 16, kernel: 3, padding: 1", "{name: dw1, out: 16, kernel: 5, padding: 2"),
             "depthwise conv 'dw1' with kernel 5"),
            (["--runtime", "pytorch-cuda", "--dtype", "bfloat16"], ("", ""), "depthwise conv 'dw1' under bfloat16 autocast")):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"grouped-refusal-{os.getpid()}.yaml")
        with open(path, "w") as f:
            f.write(text.replace(*edit) if edit[0] else text)
        run = subprocess.run([SNNMEM, "plan", path, "--strategy", "bptt"] + args, capture_output=True, text=True)
        os.remove(path)
        assert run.returncode != 0 and words in run.stderr, run.stderr
