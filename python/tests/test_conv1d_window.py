"""conv1d with a window (kernel, stride, padding, groups) over tokens: the loader as Swift reads it (shapes and
errors), the builder's modules, what the pytorch-cuda plan says PyTorch keeps against fake-CUDA autograd, and the
export of SpikingJelly's / PyTorch's Conv1d. The CPU is held to the plan by the committed fixtures of the test
profile (Tests/PlannerTests/Fixtures/pytorch/alif-conv1d-*.json, bash scripts/pytorch-fixtures.sh alif-conv1d)."""

import json
import os
import subprocess

import pytest
import torch.nn as nn
from conftest import ROOT, SNNMEM, assert_loader_fails_as_snnmem

from snnmem_torch import profile as P
from snnmem_torch.adaptive_lif import AdaptiveLIFNode
from snnmem_torch.attention import TokenMean, Tokens
from snnmem_torch.build import build
from snnmem_torch.export import ExportError, export_profile

from spikingjelly.activation_based import layer  # noqa: E402  (after torch)

needs_snnmem = pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")
PROFILE = os.path.join(ROOT, "Tests", "PlannerTests", "Fixtures", "pytorch", "profiles", "alif-conv1d.yaml")


@needs_snnmem
def test_layers_equal_snnmem_plan():
    out = subprocess.run([SNNMEM, "plan", PROFILE, "--strategy", "bptt", "--layers", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    theirs = [(l["layer"], l["kind"], l["inputShape"], l["outputShape"]) for l in json.loads(out)["layers"]]
    mine = [(l.path, l.kind, list(l.input_shape), list(l.output_shape)) for l in P.load(PROFILE).all_layers]
    assert mine == theirs
    assert dict((m[0], m[3]) for m in mine)["conv2"] == [32, 32]  # stride 2 over 64 tokens


def test_builder_makes_the_profiles_convs():
    net = build(P.load(PROFILE))
    convs = {path: m for path, m in net.layers.items() if isinstance(m, nn.Conv1d)}
    got = {p: (m.kernel_size, m.stride, m.padding, m.groups, m.bias is not None) for p, m in convs.items()}
    assert got == {"conv1": ((5,), (1,), (2,), 1, False), "conv2": ((3,), (2,), (1,), 1, False),
                   "conv3": ((3,), (1,), (1,), 4, True)}
    assert [type(m) for p, m in net.neurons] == [AdaptiveLIFNode] * 3


BAD_FILES = ["conv1d-kernel-too-wide", "conv1d-groups"]


@needs_snnmem
@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_profiles_fail_as_in_swift(name):
    path = os.path.join(ROOT, "Tests", "ProfilesTests", "BadProfiles", name + ".yaml")
    assert_loader_fails_as_snnmem(path)


@needs_snnmem
def test_cuda_plan_saves_what_fake_cuda_autograd_saves():
    """Each conv1d keeps its input (cuDNN's convolution saves input and weight, no new tensor); each adaptive
    neuron saves its h_seq and b_seq."""
    from snnmem_torch import cuda_meta as cm
    plan = json.loads(subprocess.run([SNNMEM, "plan", PROFILE, "--format", "json", "--runtime", "pytorch-cuda", "--strategy",
                                      "bptt", "--timesteps", "2", "--batch", "2"], capture_output=True, text=True,
                                     check=True).stdout)["strategies"][0]
    planned = {e["layer"]: e["bytes"] for e in plan["savedByLayer"]}
    kinds = {l.path: l.kind for l in P.load(PROFILE).all_layers}
    checked = 0
    for name, trace in cm.network_traces(PROFILE, T=2, B=2):
        # conv1 keeps the network's input frames, which the plan counts as the input, not as a layer's.
        if kinds.get(name) in ("conv1d", "neuron") and name != "conv1":
            kept = sum(s.nbytes for s in trace.saved if s.origin.startswith("input"))
            new = sum(s.nbytes for s in trace.saved if s.is_new)
            assert new + kept == planned[name], name
            if kinds[name] == "conv1d":
                assert new == 0 and kept == 2 * 2 * trace_input_elements(name) * 4
            checked += 1
    assert checked == 5


def trace_input_elements(name: str) -> int:
    shapes = {l.path: l.input_shape for l in P.load(PROFILE).all_layers}
    c, n = shapes[name]
    return c * n


class Conv1dNet(nn.Module):
    def __init__(self, conv2: nn.Module):
        super().__init__()
        self.body = nn.Sequential(Tokens(), layer.Conv1d(2, 16, 5, padding=2, bias=False), AdaptiveLIFNode(rho=0.8, beta=0.5),
                                  conv2, AdaptiveLIFNode(v_reset=None), TokenMean(), layer.Linear(32, 10))

    def forward(self, x):
        return self.body(x)


@needs_snnmem
def test_export_reads_windowed_convs_back(tmp_path):
    out = str(tmp_path / "c.yaml")
    net = Conv1dNet(layer.Conv1d(16, 32, 3, stride=2, padding=1, groups=4))
    text = export_profile(net, (2, 1, 64), timesteps=2, batch=2, name="c", output=out)
    assert "  - conv1d: {name: body.1, out: 16, kernel: 5, padding: 2, bias: false}" in text
    assert "  - conv1d: {name: body.3, out: 32, kernel: 3, stride: 2, padding: 1, groups: 4}" in text
    loaded = P.load(out)
    assert [l.output_shape for l in loaded.layers[1:5]] == [(16, 64), (16, 64), (32, 32), (32, 32)]
    plan = json.loads(subprocess.run([SNNMEM, "plan", out, "--format", "json", "--runtime", "pytorch-cpu", "--strategy",
                                      "bptt"], capture_output=True, text=True, check=True).stdout)["strategies"][0]
    assert plan["peakBytes"] > 0


def test_export_refuses_dilation():
    with pytest.raises(ExportError, match="dilation"):
        export_profile(Conv1dNet(layer.Conv1d(16, 32, 3, padding=2, dilation=2, stride=2)), (2, 1, 64), timesteps=2, batch=2)


@needs_snnmem
@pytest.mark.parametrize("strategy", ["bptt", "sltt", "checkpoint"])
def test_check_measures_a_users_model_as_its_export_plans(strategy, tmp_path):
    """`snnmem-torch check` on a model of Conv1d windows, BatchNorm1d and AdaptiveLIFNode over signals that
    change every timestep: its export plans what the model itself saves (equal) and its peak within 1%."""
    from snnmem_torch.check import check_model
    net = nn.Sequential(Tokens(), layer.Conv1d(2, 16, 5, padding=2, bias=False), layer.BatchNorm1d(16),
                        AdaptiveLIFNode(rho=0.8, beta=0.5), layer.Conv1d(16, 32, 3, stride=2, padding=1, groups=4),
                        AdaptiveLIFNode(v_reset=None), TokenMean(), layer.Linear(32, 10))
    result = check_model(net, (2, 1, 64), timesteps=3, batch=2, strategy=strategy, profile_out=str(tmp_path / "c.yaml"),
                         binary=SNNMEM, input_per_timestep=True)
    assert result.agrees, [(r.layer, r.predicted_bytes, r.measured_bytes) for r in result.rows]
    assert {"3", "5"} <= {r.layer for r in result.rows}
    assert result.measured_saved_bytes == result.predicted_saved_bytes > 0
