"""The leaky integrator readout (`neuron: {type: li}`): loader errors as in Swift, the PyTorch module against
autograd's finite differences, what its autograd saves, and the pytorch-cpu / pytorch-cuda plans against it."""

import os
import subprocess

import pytest
import torch
from conftest import ROOT, SNNMEM, assert_loader_fails_as_snnmem, planned_and_measured_on_cpu, saved_by_layer

from snnmem_torch import profile as P
from snnmem_torch.leaky_integrator import LeakyIntegrator

needs_snnmem = pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")

LI = """
input: {features: 12, perTimestep: true}
timesteps: 3
batch: 2
layers:
  - linear: {out: 8}
  - neuron
  - linear: {out: 4}
  - neuron: {name: readout, type: li, tau: 3.0}
"""


def test_loader_reads_li(write_profile):
    layer = P.load(write_profile(LI)).all_layers[-1]
    assert (layer.kind, layer.neuron.type, layer.neuron.tau, layer.output_shape) == ("neuron", "li", 3.0, (4,))


@needs_snnmem
@pytest.mark.parametrize("extra", ["threshold: 0.5", "reset: soft", "surrogate: sigmoid", "detachReset: true", "vReset: 0.1"])
def test_spiking_settings_fail_as_in_swift(extra, write_profile):
    path = write_profile(LI.replace("tau: 3.0}", f"tau: 3.0, {extra}}}"), "bad.yaml")
    message = assert_loader_fails_as_snnmem(path)
    assert "an li neuron (a leaky integrator) never fires" in message


@needs_snnmem
def test_bad_profile_file_fails_as_in_swift():
    path = os.path.join(ROOT, "Tests", "ProfilesTests", "BadProfiles", "li-threshold.yaml")
    assert_loader_fails_as_snnmem(path)


def test_module_is_the_leaky_integration_and_its_gradient_checks():
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    li = LeakyIntegrator(3.0)
    out = li(x)
    v = torch.zeros(2, 3, dtype=torch.float64)
    for t in range(4):
        v = v + (x[t] - v) / 3.0
        assert torch.allclose(out[t], v)
    li.reset()
    assert torch.autograd.gradcheck(lambda x: (li.reset(), li(x))[1], (x,))
    # Single-step calls carry v until reset, as multi-step.
    single = LeakyIntegrator(3.0, step_mode="s")
    assert torch.allclose(torch.stack([single(x_t) for x_t in x]), out)


def test_autograd_saves_nothing_for_it():
    """Sub, division by a number, add and stack keep no tensor for backward: nothing saved, as the snnmem
    runtime declares."""
    x = torch.randn(5, 2, 3, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (saved.append(t), t)[1], lambda t: t):
        LeakyIntegrator(2.0)(x).sum().backward()
    assert saved == []


@needs_snnmem
@pytest.mark.parametrize("strategy", ["bptt", "sltt", "checkpoint"])
def test_pytorch_cpu_measures_what_the_plan_says(strategy, write_profile):
    """pytorch-cpu: the li layer saves nothing, the rest as planned; the step peak within 1% (the layout is
    coarser than the measured stream by a few [B, 4] tensors, python/..../PyTorchLayerTable+LeakyIntegrator)."""
    path = write_profile(LI.replace("batch: 2", "batch: 16").replace("out: 8", "out: 64"))
    planned, measured = planned_and_measured_on_cpu(path, strategy)
    saved = saved_by_layer(measured)
    assert saved.get("readout", 0) == saved_by_layer(planned).get("readout", 0)
    if strategy == "bptt":
        assert "readout" not in saved
        assert saved == saved_by_layer(planned)
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


@needs_snnmem
def test_cuda_plan_saves_what_fake_cuda_autograd_saves(write_profile):
    """pytorch-cuda: the module runs the same ops on CUDA (no fused kernel): nothing saved, as planned."""
    import json
    from snnmem_torch import cuda_meta as cm
    path = write_profile(LI)
    plan = json.loads(subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", "pytorch-cuda", "--strategy",
                                      "bptt", "--timesteps", "2", "--batch", "2"], capture_output=True, text=True,
                                     check=True).stdout)["strategies"][0]
    planned = {e["layer"]: e["bytes"] for e in plan["savedByLayer"]}
    traces = dict(cm.network_traces(path, T=2, B=2))
    assert traces["readout"].saved_new_bytes() == planned.get("readout", 0) == 0


def test_checkpoint_gradients_equal_bptt(write_profile):
    """The module's v is an explicit checkpoint state (get_reset_value), so segments give bptt's gradients."""
    from snnmem_torch.strategies import reference_gradients
    from snnmem_torch import profile as prof
    diff, name = reference_gradients(prof.load(write_profile(LI)), batch=2, timesteps=3, segment=2)
    assert name == "bptt" and diff < 1e-6


def test_network_builds_and_trains_one_step(write_profile):
    from snnmem_torch.build import build
    net = build(P.load(write_profile(LI)))
    x = torch.rand(3, 2, 12)
    out = net(x) if not hasattr(net, "net") else net.net(x)
    assert out.shape == (3, 2, 4)
    out.mean(0).sum().backward()
