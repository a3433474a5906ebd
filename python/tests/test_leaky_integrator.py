"""The leaky integrator readout (`neuron: {type: li}`): loader errors as in Swift, the PyTorch module against
autograd's finite differences, what its autograd saves, and the pytorch runtimes refusing to plan it (not modelled)."""

import os
import subprocess

import pytest
import torch
from conftest import ROOT

from snnmem_torch import profile as P
from snnmem_torch.errors import ProfileError
from snnmem_torch.leaky_integrator import LeakyIntegrator

SNNMEM = os.path.join(ROOT, ".build", "release", "snnmem")
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
    swift = subprocess.run([SNNMEM, "plan", path], capture_output=True, text=True)
    assert swift.returncode == 2
    with pytest.raises(ProfileError) as info:
        P.load(path)
    assert str(info.value) == swift.stderr.strip()
    assert "an li neuron (a leaky integrator) never fires" in str(info.value)


@needs_snnmem
def test_bad_profile_file_fails_as_in_swift():
    path = os.path.join(ROOT, "Tests", "ProfilesTests", "BadProfiles", "li-threshold.yaml")
    swift = subprocess.run([SNNMEM, "plan", path], capture_output=True, text=True)
    with pytest.raises(ProfileError) as info:
        P.load(path)
    assert swift.returncode == 2 and str(info.value) == swift.stderr.strip()


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
@pytest.mark.parametrize("runtime", ["pytorch-cpu", "pytorch-cuda"])
def test_pytorch_runtimes_refuse_to_plan_it(runtime, write_profile):
    out = subprocess.run([SNNMEM, "plan", write_profile(LI), "--runtime", runtime, "--strategy", "bptt"],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "leaky integrator 'readout' (neuron type li) is not yet modelled" in out.stderr
    planned = subprocess.run([SNNMEM, "plan", write_profile(LI), "--runtime", "snnmem", "--strategy", "bptt"],
                             capture_output=True, text=True)
    assert planned.returncode == 0, planned.stderr


def test_network_builds_and_trains_one_step(write_profile):
    from snnmem_torch.build import build
    net = build(P.load(write_profile(LI)))
    x = torch.rand(3, 2, 12)
    out = net(x) if not hasattr(net, "net") else net.net(x)
    assert out.shape == (3, 2, 4)
    out.mean(0).sum().backward()
