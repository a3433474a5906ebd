"""The recurrent spiking layer (`recurrent: {out, bias, neuron}`): loader errors as in Swift, the module against
SpikingJelly's LinearRecurrentContainer (same function, same weights when in == out), what autograd keeps per
timestep, SLTT's detach of both carried states, checkpoint == bptt, and the bundled SHD network training."""

import os
import subprocess

import pytest
import torch
from conftest import ROOT, SNNMEM, assert_loader_fails_as_snnmem

from snnmem_torch import profile as P

needs_snnmem = pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")
BAD = os.path.join(ROOT, "Tests", "ProfilesTests", "BadProfiles")

REC = """
input: {features: 12, perTimestep: true}
timesteps: 3
batch: 2
neuron: {type: lif, tau: 2.0, threshold: 0.5}
layers:
  - recurrent: {name: rec1, out: 8}
  - linear: {name: fc, out: 4}
  - neuron: {name: readout, type: li, tau: 2.0}
"""


def test_loader_reads_it(write_profile):
    layer = P.load(write_profile(REC)).all_layers[0]
    assert (layer.kind, layer.input_shape, layer.output_shape, layer.neuron.type) == ("recurrent", (12,), (8,), "lif")
    assert layer.params == {"in_features": 12, "out_features": 8, "bias": True}


@needs_snnmem
@pytest.mark.parametrize("name", sorted(f for f in os.listdir(BAD) if f.startswith("recurrent-")))
def test_bad_profiles_fail_as_in_swift(name):
    path = os.path.join(BAD, name)
    assert_loader_fails_as_snnmem(path)


def test_same_function_as_linear_recurrent_container():
    from spikingjelly.activation_based import functional, layer, neuron
    from snnmem_torch.recurrent import RecurrentSpiking
    torch.manual_seed(0)
    ours = RecurrentSpiking(6, 6, True, neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode="s"), step_mode="m")
    theirs = layer.LinearRecurrentContainer(neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode="s"), 6, 6)
    theirs.rc.load_state_dict(ours.rc.state_dict())
    x = torch.rand(5, 3, 6) * 2
    expected = torch.stack([theirs(x_t) for x_t in x])
    assert torch.equal(ours(x), expected) and expected.sum() > 0
    functional.reset_net(ours)
    assert ours.y is None and ours.neuron.v == 0.0


def test_autograd_keeps_the_concatenation_and_the_neuron_step():
    from spikingjelly.activation_based import neuron
    from snnmem_torch.recurrent import RecurrentSpiking
    module = RecurrentSpiking(5, 4, True, neuron.LIFNode(tau=2.0, step_mode="s"))
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (saved.append(tuple(t.shape)), t)[1], lambda t: t):
        module(torch.rand(3, 2, 5)).sum().backward()
    assert saved.count((2, 9)) == 3  # cat(x_t, y_{t-1}) per timestep, [B, in + out]
    assert saved.count((2, 4)) == 3 * 3  # h - threshold, 1 - s and h per timestep (hard reset)


def test_sltt_detaches_both_states_and_checkpoint_equals_bptt(write_profile):
    from snnmem_torch.strategies import Trainer, reference_gradients
    profile = P.load(write_profile(REC))
    trainer = Trainer(profile, "sltt")
    paths = [path for path, _ in trainer.neurons]
    assert paths == ["rec1", "rec1", "readout"]  # the fed-back spikes, the neuron's v, the readout's v
    trainer.step()
    diff, name = reference_gradients(profile, batch=2, timesteps=3, segment=2)
    assert name == "bptt" and diff < 1e-6


def test_bundled_shd_network_trains_one_step():
    from snnmem_torch.strategies import Trainer
    profile = P.load(os.path.join(ROOT, "profiles", "shd-recurrent.yaml"))
    assert profile.input_shape == (700,) and profile.classes == 20
    trainer = Trainer(profile, "bptt", batch=2, timesteps=3)
    loss = trainer.step()
    assert loss > 0 and trainer.optimizer_steps == 1


@needs_snnmem
@pytest.mark.parametrize("container", ["ours", "spikingjelly"])
def test_export_recognizes_the_recurrent_layer_and_the_readout(container, tmp_path):
    """nn modules -> export -> a profile with `recurrent` and an li neuron, whose weights are the module's and
    which snnmem plans on pytorch-cpu and snnmem."""
    import torch.nn as nn
    from spikingjelly.activation_based import layer, neuron
    from snnmem_torch.export import export_profile
    from snnmem_torch.leaky_integrator import LeakyIntegrator
    from snnmem_torch.recurrent import RecurrentSpiking
    lif = neuron.LIFNode(tau=2.0, v_threshold=0.5, step_mode="s")
    if container == "ours":
        body = [layer.Flatten(step_mode="m"), RecurrentSpiking(16, 8, True, lif)]
    else:
        body = [layer.Flatten(step_mode="m"), layer.Linear(16, 8, step_mode="m"), layer.LinearRecurrentContainer(lif, 8, 8, step_mode="m")]
    model = nn.Sequential(*body, layer.Linear(8, 4, step_mode="m"), LeakyIntegrator(3.0))
    out = str(tmp_path / "rec.yaml")
    export_profile(model, (1, 4, 4), timesteps=3, batch=2, output=out)
    prof = P.load(out)
    kinds = [l.kind for l in prof.layers]
    assert kinds == (["flatten", "recurrent", "linear", "neuron"] if container == "ours"
                     else ["flatten", "linear", "recurrent", "linear", "neuron"])
    rec = next(l for l in prof.layers if l.kind == "recurrent")
    assert (rec.params["out_features"], rec.neuron.type, rec.neuron.threshold) == (8, "lif", 0.5)
    assert (rec.params["in_features"] + 8) * 8 == body[-1].rc.weight.numel()
    readout = prof.layers[-1]
    assert (readout.neuron.type, readout.neuron.tau) == ("li", 3.0)
    for runtime in ("snnmem", "pytorch-cpu"):
        run = subprocess.run([SNNMEM, "plan", out, "--runtime", runtime, "--strategy", "bptt"], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr


def test_export_refuses_a_container_around_two_linear_maps():
    import torch.nn as nn
    from spikingjelly.activation_based import layer, neuron
    from snnmem_torch.export import ExportError, export_profile
    inner = nn.Sequential(nn.Linear(16, 8), neuron.LIFNode(step_mode="s"))
    model = nn.Sequential(layer.Flatten(step_mode="m"), layer.LinearRecurrentContainer(inner, 16, 8, step_mode="m"))
    with pytest.raises(ExportError) as info:
        export_profile(model, (1, 4, 4), timesteps=2, batch=2)
    assert "one linear map of [x_t ; s_(t-1)]" in str(info.value)
