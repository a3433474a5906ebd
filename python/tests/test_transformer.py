"""Spiking transformers: the profile keys and errors as Swift's, and the modules as Spikformer's code."""

import os
import subprocess

import pytest
import torch
from conftest import ROOT, SNNMEM, profile_path

from snnmem_torch import profile as P
from snnmem_torch.build import build
from snnmem_torch.errors import ProfileError


SSA = """
name: ssa-tiny
input: {channels: 3, height: 4, width: 4}
timesteps: 2
batch: 2
neuron: {type: lif, tau: 2.0, reset: hard, detachReset: true, surrogate: {type: sigmoid, alpha: 4.0}}
layers:
  - conv: {name: stem, out: 8, kernel: 3, padding: 1}
  - batchnorm: {name: bn}
  - neuron: {name: lif}
  - tokens
  - residual: {name: attn, main: [attention: {name: ssa, kind: ssa, heads: 2, scale: 0.125}]}
  - residual: {name: mlp, main: [conv1d: {name: fc1, out: 16}, batchnorm: {name: fc1_bn}, neuron: {name: fc1_lif}, conv1d: {name: fc2, out: 8}]}
  - tokenmean
  - linear: {name: head, out: 3}
"""

BAD = [
    (SSA.replace("heads: 2", "heads: 3"), "3 heads do not divide the 8 channels"),
    (SSA.replace("  - tokens\n", ""), "attention needs a [channels, tokens] input"),
    (SSA.replace("out: 16}", "out: 16, kernel: 3, groups: 3}"), "groups = 3 must divide both the input channels (8) and `out` (16)"),
    (SSA.replace("out: 16}", "out: 16, kernel: 3, padding: 3}"), "padding 3 is not smaller than the kernel 3"),
    (SSA.replace("out: 16}", "out: 16, kernel: 17}"), "a kernel of 17 does not fit 16 tokens with padding 0"),
    (SSA.replace("  - tokenmean\n", "  - tokens\n"), "tokens needs a [channels, height, width] input"),
    (SSA.replace("kind: ssa", "kind: sda"), "'kind' in attention is 'sda', which is not one of: ssa, sdsa"),
    (SSA.replace("  - tokens\n", "  - tokenmean\n"), "tokenmean needs a [channels, tokens] input"),
    (SSA.replace("scale: 0.125", "scale: 0"), "'scale' in attention is 0.0, but it must be greater than 0"),
]


@pytest.mark.parametrize("index", range(len(BAD)))
def test_errors_name_the_layer_and_equal_snnmem(index, write_profile):
    text, problem = BAD[index]
    path = write_profile(text, "bad.yaml")
    with pytest.raises(ProfileError) as info:
        P.load(path)
    assert problem in str(info.value) and "\n  fix: " in str(info.value)
    if os.path.exists(SNNMEM):
        swift = subprocess.run([SNNMEM, "plan", path], capture_output=True, text=True)
        assert swift.returncode == 2
        assert str(info.value) == swift.stderr.strip()


def test_attention_parts_are_layers_of_their_own():
    prof = P.parse(SSA, "ssa.yaml")
    paths = [layer.path for layer in prof.all_layers]
    assert paths[paths.index("attn/main/ssa") + 1:][:13] == [
        f"attn/main/ssa/{name}" for name in ("q_conv", "q_bn", "q_lif", "k_conv", "k_bn", "k_lif", "v_conv", "v_bn", "v_lif",
                                             "attn_lif", "proj_conv", "proj_bn", "proj_lif")]
    attn_lif = next(layer for layer in prof.all_layers if layer.path == "attn/main/ssa/attn_lif")
    assert attn_lif.neuron.threshold == 0.5 and attn_lif.neuron.detach_reset
    net = build(prof)
    assert list(net.layers) == paths
    assert net.layers["attn/main/ssa/q_conv"].bias is None and net.layers["attn/main/ssa/proj_conv"].bias is not None
    assert tuple(net.layers["mlp/main/fc1"].weight.shape) == (16, 8, 1)


def test_attention_computes_spikformers_products():
    """(q kT) * scale, no softmax, then attn v, per head: against the same product written out."""
    prof = P.parse(SSA, "ssa.yaml")
    net = build(prof)
    ssa = net.layers["attn/main/ssa"]
    x = (torch.rand(2, 2, 8, 16) > 0.5).float()
    captured = {}
    ssa.attn_lif.register_forward_pre_hook(lambda module, args: captured.setdefault("joined", args[0].detach().clone()))
    ssa(x)
    from spikingjelly.activation_based import functional
    functional.reset_net(ssa)
    q = ssa.q_lif(ssa.q_bn(ssa.q_conv(x)))
    k = ssa.k_lif(ssa.k_bn(ssa.k_conv(x)))
    v = ssa.v_lif(ssa.v_bn(ssa.v_conv(x)))
    expected = torch.zeros(2, 2, 8, 16)
    for h in range(2):
        rows = slice(4 * h, 4 * h + 4)
        qh, kh, vh = q[:, :, rows, :], k[:, :, rows, :], v[:, :, rows, :]   # [T, B, d, N]
        attn = torch.einsum("tbdn,tbdm->tbnm", qh, kh) * 0.125
        expected[:, :, rows, :] = torch.einsum("tbnm,tbdm->tbdn", attn, vh)
    assert torch.allclose(captured["joined"], expected, atol=1e-5)


def test_spikformer_trains_one_step():
    prof = P.load(profile_path("spikformer-4-384"))
    net = build(prof)
    assert sum(1 for layer in prof.all_layers if layer.kind == "attention") == 4
    out = net(torch.rand(1, 1, 3, 32, 32).repeat(1, 1, 1, 1, 1))
    assert out.shape == (1, 1, 10)
    out.sum().backward()
    assert net.layers["block.0/attn/main/attention0/q_conv"].weight.grad is not None


def test_sdsa_gates_q_by_the_spikes_of_the_column_sums():
    """SDSA: q * SN(sum over tokens of k * v), per channel; the talking-heads neuron sees [C, 1]."""
    prof = P.parse(SSA.replace("kind: ssa", "kind: sdsa"), "sdsa.yaml")
    parts = {layer.name: layer for layer in prof.all_layers if layer.path.startswith("attn/main/ssa/")}
    assert parts["talking_heads_lif"].input_shape == (8, 1) and "proj_lif" not in parts and "attn_lif" not in parts
    net = build(prof)
    sdsa = net.layers["attn/main/ssa"]
    x = (torch.rand(2, 2, 8, 16) > 0.5).float()
    captured = {}
    sdsa.proj_conv.register_forward_pre_hook(lambda module, args: captured.setdefault("gated", args[0].detach().clone()))
    sdsa.talking_heads_lif.register_forward_hook(lambda module, args, out: captured.setdefault("spikes", out.detach().clone()))
    sdsa(x)
    from spikingjelly.activation_based import functional
    functional.reset_net(sdsa)
    q = sdsa.q_lif(sdsa.q_bn(sdsa.q_conv(x)))
    k = sdsa.k_lif(sdsa.k_bn(sdsa.k_conv(x)))
    v = sdsa.v_lif(sdsa.v_bn(sdsa.v_conv(x)))
    spikes = captured["spikes"]            # [T, B, heads, 1, width]
    assert spikes.shape == (2, 2, 2, 1, 4)
    channel_spikes = spikes.reshape(2, 2, 8, 1)
    functional.reset_net(sdsa)
    sums = (k * v).sum(-1).reshape(2, 2, 2, 1, 4)
    assert torch.equal(sdsa.talking_heads_lif(sums), spikes)
    assert torch.allclose(captured["gated"], q * channel_spikes)


def test_spike_driven_transformer_has_the_papers_parameters():
    net = build(P.load(profile_path("spike-driven-transformer-8-512")))
    assert sum(p.numel() for p in net.parameters()) == 29_689_384  # Yao et al. 2023: 29.68M
