"""The adaptive LIF (`neuron: {type: alif}`): the package's AdaptiveLIFNode against a plain autograd loop
(gradients through time, both resets, both surrogates, a detached reset), reset and single-step behaviour, the
loader's errors equal Swift's, what PyTorch keeps for it on the CPU (measured against the pytorch-cpu plan) and
on fake CUDA (against the pytorch-cuda plan), and its export."""

import json
import math
import os
import subprocess

import pytest
import torch
import torch.nn as nn
from conftest import ROOT, SNNMEM, assert_loader_fails_as_snnmem, planned_and_measured_on_cpu, saved_by_layer

from snnmem_torch import profile as P
from snnmem_torch.adaptive_lif import AdaptiveLIFNode
from snnmem_torch.export import export_profile

from spikingjelly.activation_based import functional, layer  # noqa: E402  (after torch)

needs_snnmem = pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")

# A small conv network with two adaptive neurons (a hard and a soft reset): measured in about a second.
ALIF = """
name: alif-conv
input: {channels: 2, height: 8, width: 8}
timesteps: 3
batch: 2
neuron: {type: alif, tau: 2.0, detachReset: true, rho: 0.8, beta: 0.5}
layers:
  - conv: {out: 16, kernel: 3, padding: 1}
  - batchnorm
  - neuron
  - adaptiveavgpool: {output: [3, 5]}
  - flatten
  - linear: {out: 20}
  - neuron: {name: alif2, reset: soft, surrogate: {type: sigmoid, alpha: 4.0}}
  - linear: {out: 10}
"""


def reference(x, tau, threshold, v_reset, rho, beta, surrogate, alpha, detach):
    """The adaptive LIF as plain autograd ops: the spike is Heaviside forward, the surrogate's slope backward."""
    leak = 0.0 if v_reset is None else v_reset
    v = torch.full_like(x[0], leak)
    b = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        h = v + (x[t] - (v - leak)) / tau
        theta = threshold + beta * b
        m = h - theta
        smooth = torch.atan(math.pi / 2 * alpha * m) / math.pi + 0.5 if surrogate == "atan" else torch.sigmoid(alpha * m)
        s = (m >= 0).to(x.dtype) + smooth - smooth.detach()
        r = s.detach() if detach else s
        v = h * (1 - r) + v_reset * r if v_reset is not None else h - r * theta
        b = rho * b + (1 - rho) * s
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("v_reset", [-0.1, None])
@pytest.mark.parametrize("surrogate", ["atan", "sigmoid"])
@pytest.mark.parametrize("detach", [False, True])
def test_gradients_equal_a_plain_autograd_loop(v_reset, surrogate, detach):
    torch.manual_seed(0)
    settings = dict(tau=3.0, threshold=0.6, v_reset=v_reset, rho=0.75, beta=0.8, surrogate=surrogate, alpha=3.0)
    node = AdaptiveLIFNode(**{k: v for k, v in settings.items() if k != "threshold"}, v_threshold=0.6, detach_reset=detach)
    x = (torch.randn(6, 3, 5, dtype=torch.float64) * 1.5).requires_grad_()
    g = torch.randn_like(x)
    y = node(x)
    ref = reference(x, **settings, detach=detach)
    assert torch.allclose(y, ref.detach(), atol=1e-12) and 0 < float(y.mean()) < 1
    mine, = torch.autograd.grad((y * g).sum(), x)
    theirs, = torch.autograd.grad((ref * g).sum(), x)
    assert torch.allclose(mine, theirs, atol=1e-12, rtol=1e-10)
    # The adaptation matters: without it (beta 0) the gradient differs.
    plain = AdaptiveLIFNode(**{**{k: v for k, v in settings.items() if k != "threshold"}, "beta": 0.0}, v_threshold=0.6,
                            detach_reset=detach)
    other, = torch.autograd.grad((plain(x) * g).sum(), x)
    assert not torch.allclose(mine, other)


def test_state_carries_between_calls_and_resets():
    torch.manual_seed(1)
    x = torch.randn(4, 2, 3) + 1.0
    multi = AdaptiveLIFNode(rho=0.5, beta=1.0)
    whole = multi(x)
    assert multi.v.shape == (2, 2, 3)  # v and b in one tensor
    single = AdaptiveLIFNode(rho=0.5, beta=1.0, step_mode="s")
    steps = torch.stack([single(x_t) for x_t in x])
    assert torch.equal(whole, steps)
    functional.reset_net(multi)
    assert multi.v is None
    assert torch.equal(multi(x), whole)
    with pytest.raises(ValueError, match="rho"):
        AdaptiveLIFNode(rho=1.0)


@needs_snnmem
def test_layers_equal_snnmem_plan(write_profile):
    path = write_profile(ALIF)
    out = subprocess.run([SNNMEM, "plan", path, "--strategy", "bptt", "--layers", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    theirs = [(l["layer"], l["kind"], l["inputShape"], l["outputShape"]) for l in json.loads(out)["layers"]]
    prof = P.load(path)
    assert [(l.path, l.kind, list(l.input_shape), list(l.output_shape)) for l in prof.all_layers] == theirs
    assert (prof.layers[2].neuron.rho, prof.layers[2].neuron.beta, prof.layers[6].neuron.reset) == (0.8, 0.5, "soft")


BAD_FILES = ["alif-rho-one", "alif-beta-negative", "rho-on-lif"]


@needs_snnmem
@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_profiles_fail_as_in_swift(name):
    path = os.path.join(ROOT, "Tests", "ProfilesTests", "BadProfiles", name + ".yaml")
    assert_loader_fails_as_snnmem(path)


@needs_snnmem
@pytest.mark.parametrize("strategy", ["bptt", "checkpoint", "sltt"])
def test_measured_saved_bytes_and_peak_equal_the_plan(strategy, write_profile):
    path = write_profile(ALIF)
    planned, measured = planned_and_measured_on_cpu(path, strategy)
    if strategy == "bptt":  # checkpoint and sltt count saved tensors per segment or timestep, not summed
        saved = saved_by_layer(measured)
        assert saved == saved_by_layer(planned)
        # h_seq and b_seq, [T, B, 16, 8, 8] float32 each: nothing else, not the input.
        assert saved["neuron2"] == 2 * 3 * 2 * 16 * 8 * 8 * 4
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


def test_cuda_saves_h_and_b_of_every_timestep():
    from snnmem_torch import cuda_meta as cm
    with cm.fake_cuda():
        node = AdaptiveLIFNode(v_reset=None, surrogate="sigmoid")
        x = torch.empty((4, 2, 8, 4, 4), requires_grad=True)
        tr = cm.trace(lambda: node(x), {"x_seq": x}, {"n": node}, state=lambda: [node.v])
    assert [(s.shape, s.origin) for s in tr.saved] == [((4, 2, 8, 4, 4), "new:aten.empty_like")] * 2
    # The zero state (dies), h_seq, b_seq, the spikes, the new state; then θ and the mask each timestep.
    assert [(a.op, a.shape, a.alive) for a in tr.forward[:5]] == [
        ("aten.zeros", (2, 2, 8, 4, 4), False), ("aten.empty_like", (4, 2, 8, 4, 4), True),
        ("aten.empty_like", (4, 2, 8, 4, 4), True), ("aten.empty_like", (4, 2, 8, 4, 4), True),
        ("aten.clone", (2, 2, 8, 4, 4), True)]
    assert [(a.op, a.dtype) for a in tr.forward[5:]] == [("aten.mul", torch.float32), ("aten.ge", torch.bool)] * 4


@needs_snnmem
def test_cuda_plan_saves_what_fake_cuda_autograd_saves(write_profile):
    from snnmem_torch import cuda_meta as cm
    path = write_profile(ALIF)
    plan = json.loads(subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", "pytorch-cuda", "--strategy",
                                      "bptt", "--timesteps", "2", "--batch", "2"], capture_output=True, text=True,
                                     check=True).stdout)["strategies"][0]
    planned = {e["layer"]: e["bytes"] for e in plan["savedByLayer"]}
    kinds = {l.path: l.kind for l in P.load(path).all_layers}
    checked = 0
    for name, trace in cm.network_traces(path, T=2, B=2):
        if kinds.get(name) == "neuron":
            # h_seq and b_seq are both new empty_like tensors of one shape, which saved_new_bytes() counts once.
            assert not any(s.origin.startswith("input") for s in trace.saved)
            assert sum(s.nbytes for s in trace.saved if s.is_new) == planned[name], name
            checked += 1
    assert checked == 2


class ALIFModule(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(layer.Conv2d(2, 4, 3, padding=1, bias=False), layer.BatchNorm2d(4),
                                  AdaptiveLIFNode(tau=3.0, rho=0.6, beta=1.2, detach_reset=True), layer.Flatten(),
                                  layer.Linear(256, 10), AdaptiveLIFNode(v_reset=None, surrogate="sigmoid", alpha=4.0))

    def forward(self, x):
        return self.body(x)


@needs_snnmem
def test_export_reads_the_adaptive_neuron_back(tmp_path):
    out = str(tmp_path / "alif.yaml")
    text = export_profile(ALIFModule(), (2, 8, 8), timesteps=3, batch=2, name="alif", output=out)
    loaded = P.load(out)
    first, last = loaded.layers[2].neuron, loaded.layers[5].neuron
    assert (first.type, first.tau, first.rho, first.beta, first.detach_reset) == ("alif", 3.0, 0.6, 1.2, True)
    assert (last.type, last.reset, last.surrogate, last.surrogate_alpha, last.rho, last.beta) == \
        ("alif", "soft", "sigmoid", 4.0, 0.9, 1.8)
    assert "type: alif" in text
    # The exported profile plans what the module saves: h_seq and b_seq per neuron.
    plan = json.loads(subprocess.run([SNNMEM, "plan", out, "--format", "json", "--runtime", "pytorch-cpu", "--strategy",
                                      "bptt"], capture_output=True, text=True, check=True).stdout)["strategies"][0]
    saved = {e["layer"]: e["bytes"] for e in plan["savedByLayer"]}
    assert saved["body.2"] == 2 * 3 * 2 * 4 * 8 * 8 * 4 and saved["body.5"] == 2 * 3 * 2 * 10 * 4
