"""layernorm: the loader as Swift reads it (shapes and errors), what PyTorch keeps for nn.LayerNorm on CUDA
(fake device) and on the CPU (measured against the plan, the CPU's per-thread partials buffer), the builder
and the exporter's round trip."""

import json
import os
import subprocess

import pytest
import torch
import torch.nn as nn
from conftest import ROOT, SNNMEM, assert_loader_fails_as_snnmem

from snnmem_torch import profile as P
from snnmem_torch.export import ExportError, export_profile

from spikingjelly.activation_based import layer, neuron  # noqa: E402  (after torch)

needs_snnmem = pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")
PROFILE = os.path.join(ROOT, "python", "tests", "profiles", "layernorm.yaml")


def plan(path, strategy, runtime="pytorch-cpu", *extra):
    out = subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", runtime, "--strategy", strategy, *extra],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["strategies"][0]


def test_shapes_and_params_follow_the_swift_builder():
    prof = P.load(PROFILE)
    by_path = {l.path: l for l in prof.all_layers}
    assert by_path["stem_ln"].params == dict(normalized_shape=(32, 16, 16), eps=1e-5, affine=True)
    assert by_path["conv2_ln"].params == dict(normalized_shape=(32, 16, 16), eps=1e-6, affine=False)
    assert by_path["head_ln"].params["normalized_shape"] == (512,)


@needs_snnmem
def test_layers_equal_snnmem_plan():
    out = subprocess.run([SNNMEM, "plan", PROFILE, "--strategy", "bptt", "--layers", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    theirs = [(l["layer"], l["kind"], l["inputShape"], l["outputShape"]) for l in json.loads(out)["layers"]]
    mine = [(l.path, l.kind, list(l.input_shape), list(l.output_shape)) for l in P.load(PROFILE).all_layers]
    assert mine == theirs


@needs_snnmem
@pytest.mark.parametrize("name", ["layernorm-eps-zero", "layernorm-unknown-key"])
def test_bad_profiles_fail_as_in_swift(name):
    path = os.path.join(ROOT, "Tests", "ProfilesTests", "BadProfiles", name + ".yaml")
    assert_loader_fails_as_snnmem(path)


def test_builder_makes_torch_layer_norms():
    from snnmem_torch.build import build
    net = build(P.load(PROFILE))
    norms = {path: m for path, m in net.layers.items() if isinstance(m, nn.LayerNorm)}
    assert sorted(norms) == ["conv2_ln", "head_ln", "stem_ln"]
    assert norms["conv2_ln"].weight is None and norms["conv2_ln"].eps == 1e-6
    assert tuple(norms["stem_ln"].weight.shape) == (32, 16, 16)


def test_cpu_backward_reduces_through_a_buffer_per_thread():
    """native_layer_norm_backward on the CPU: dX, dgamma, dbeta, then a zeroed [2 * threads, N] buffer."""
    from snnmem_torch.allocations import record
    threads = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            norm = nn.LayerNorm(40)
            x = torch.randn(6, 40, requires_grad=True)
            y = norm(x)
            g = torch.randn_like(y)
            stream = record(lambda: y.backward(g))
            sizes = [e.bytes for e in stream.events if e.bytes > 0]
            assert sizes == [6 * 40 * 4, 160, 160, 2 * n * 40 * 4], sizes
    finally:
        torch.set_num_threads(threads)


def test_cuda_saves_input_and_float32_statistics():
    from snnmem_torch import cuda_meta as cm
    with cm.fake_cuda():
        norm = nn.LayerNorm([8, 4, 4])
        x = torch.empty((3, 2, 8, 4, 4), requires_grad=True)
        tr = cm.trace(lambda: norm(x), {"x": x}, {"m": norm})
    saved = sorted((s.slot, s.shape, s.origin.split(":")[0]) for s in tr.saved)
    assert saved == [("bias", (8, 4, 4), "parameter"), ("input", (3, 2, 8, 4, 4), "input"),
                     ("result1", (3, 2, 1, 1, 1), "new"), ("result2", (3, 2, 1, 1, 1), "new"),
                     ("weight", (8, 4, 4), "parameter")]


@needs_snnmem
@pytest.mark.parametrize("runtime", ["pytorch-cuda", "pytorch-cpu"])
def test_plan_saves_the_statistics_per_sample_and_timestep(runtime):
    planned = {e["layer"]: e["bytes"] for e in plan(PROFILE, "bptt", runtime, "--timesteps", "2", "--batch", "2")["savedByLayer"]}
    # Its input (kept by nothing before it) and two float32 per sample and timestep, T = B = 2.
    assert planned["conv2_ln"] == 2 * 2 * (32 * 16 * 16 * 4 + 2 * 4)
    assert planned["head_ln"] == 2 * 2 * (512 * 4 + 2 * 4)


@needs_snnmem
@pytest.mark.parametrize("strategy", ["bptt", "checkpoint", "sltt"])
def test_measured_saved_bytes_and_peak_equal_the_plan(strategy):
    from snnmem_torch.measure import measure
    planned = plan(PROFILE, strategy)
    measured = measure(PROFILE, strategy, stream=False)
    if strategy == "bptt":
        assert {e["layer"]: e["bytes"] for e in measured["savedByLayer"] if e["bytes"]} == \
            {e["layer"]: e["bytes"] for e in planned["savedByLayer"] if e["bytes"]}
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


class LayerNormNet(nn.Module):
    def __init__(self, norm=None, first=None):
        super().__init__()
        sn = dict(tau=2.0, detach_reset=True, step_mode="m")
        self.body = nn.Sequential(layer.Conv2d(2, 4, 3, padding=1, bias=False), first if first is not None else nn.LayerNorm([4, 8, 8]),
                                  neuron.LIFNode(**sn),
                                  layer.Flatten(), norm if norm is not None else nn.LayerNorm(256, eps=1e-6, elementwise_affine=False),
                                  layer.Linear(256, 10))

    def forward(self, x):
        return self.body(x)


@needs_snnmem
def test_export_round_trips_to_the_same_plan(tmp_path):
    out = str(tmp_path / "ln.yaml")
    text = export_profile(LayerNormNet(), (2, 8, 8), timesteps=2, batch=2, name="ln", output=out)
    assert "  - layernorm: {name: body.1}" in text
    assert "  - layernorm: {name: body.4, eps: 1.0e-06, affine: false}" in text or \
        "  - layernorm: {name: body.4, eps: 1e-06, affine: false}" in text
    loaded = P.load(out)
    assert [l.kind for l in loaded.layers].count("layernorm") == 2
    for runtime in ("pytorch-cpu", "pytorch-cuda", "snnmem"):
        assert plan(out, "bptt", runtime)["peakBytes"] > 0


@pytest.mark.parametrize("norm,first,why", [
    (None, nn.LayerNorm([8, 8]), "normalises the last"),
    (nn.LayerNorm(256, bias=False), None, "has a weight but no bias"),
])
def test_other_layer_norms_are_refused(norm, first, why):
    with pytest.raises(ExportError, match=why):
        export_profile(LayerNormNet(norm, first), (2, 8, 8), timesteps=2, batch=2)


TOKENS_YAML = """\
input: {channels: 2, height: 4, width: 4}
timesteps: 2
batch: 2
layers:
  - conv: {out: 8, kernel: 3, padding: 1}
  - tokens
  - layernorm: {name: ln1}
  - neuron: {name: lif1}
  - conv1d: {name: fc, out: 8}
  - layernorm: {name: ln2, eps: 1.0e-6, affine: false}
  - neuron: {name: lif2}
  - tokenmean
  - linear: {out: 10}
"""


def tokens_profile(tmp_path):
    path = tmp_path / "layernorm-tokens.yaml"
    path.write_text(TOKENS_YAML)
    return str(path)


@needs_snnmem
def test_tokens_normalise_channels_per_token_as_in_swift(tmp_path):
    path = tokens_profile(tmp_path)
    prof = P.load(path)
    by_path = {l.path: l for l in prof.all_layers}
    assert by_path["ln1"].params == dict(normalized_shape=(8,), eps=1e-5, affine=True, tokens=16)
    assert by_path["ln2"].params == dict(normalized_shape=(8,), eps=1e-6, affine=False, tokens=16)
    out = subprocess.run([SNNMEM, "plan", path, "--runtime", "snnmem", "--strategy", "bptt", "--layers", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    theirs = [(l["layer"], l["kind"], l["inputShape"], l["outputShape"]) for l in json.loads(out)["layers"]]
    assert [(l.path, l.kind, list(l.input_shape), list(l.output_shape)) for l in prof.all_layers] == theirs
    # ln1's transposed input gradient goes through `tokens` into a conv2d, which was not measured with
    # one: the PyTorch runtimes refuse it naming both layers and the way out.
    for runtime in ("pytorch-cpu", "pytorch-cuda"):
        refused = subprocess.run([SNNMEM, "plan", path, "--runtime", runtime, "--strategy", "bptt"], capture_output=True, text=True)
        assert refused.returncode != 0
        assert "layer norm 'ln1' over [C, N] tokens" in refused.stderr and "through 'tokens' to 'conv" in refused.stderr
        assert "--runtime snnmem" in refused.stderr


def test_builder_normalises_each_tokens_channels(tmp_path):
    from snnmem_torch.build import build
    from snnmem_torch.token_layernorm import TokenLayerNorm
    net = build(P.load(tokens_profile(tmp_path)))
    norm = net.layers["ln1"]
    assert type(norm) is TokenLayerNorm and tuple(norm.weight.shape) == (8,)
    assert net.layers["ln2"].weight is None and net.layers["ln2"].eps == 1e-6
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
        x = torch.randn(2, 3, 8, 16)
        y = norm(x)
        mean = x.mean(-2, keepdim=True)
        var = x.var(-2, unbiased=False, keepdim=True)
        expected = (x - mean) / torch.sqrt(var + 1e-5) * norm.weight[:, None] + norm.bias[:, None]
    assert y.shape == x.shape
    assert torch.allclose(y, expected, atol=1e-5)


class TokenLayerNormNet(nn.Module):
    def __init__(self, norm=None):
        super().__init__()
        from snnmem_torch.attention import TokenMean, Tokens
        from snnmem_torch.token_layernorm import TokenLayerNorm
        sn = dict(tau=2.0, detach_reset=True, step_mode="m")
        self.body = nn.Sequential(layer.Conv2d(2, 8, 3, padding=1, bias=False), neuron.LIFNode(**sn), Tokens(),
                                  norm if norm is not None else TokenLayerNorm(8), neuron.LIFNode(**sn), TokenMean(),
                                  layer.Linear(8, 10))

    def forward(self, x):
        return self.body(x)


class TransposedLayerNormNet(nn.Module):
    """TokenLayerNormNet as spiking transformers write the norm: nn.LayerNorm(C) on x.transpose(-1, -2),
    transposed back in forward."""

    def __init__(self, norm=None):
        super().__init__()
        from snnmem_torch.attention import TokenMean, Tokens
        sn = dict(tau=2.0, detach_reset=True, step_mode="m")
        self.stem = nn.Sequential(layer.Conv2d(2, 8, 3, padding=1, bias=False), neuron.LIFNode(**sn), Tokens())
        self.norm = norm if norm is not None else nn.LayerNorm(8)
        self.head = nn.Sequential(neuron.LIFNode(**sn), TokenMean(), layer.Linear(8, 10))

    def forward(self, x):
        return self.head(self.norm(self.stem(x).transpose(-1, -2)).transpose(-1, -2))


@needs_snnmem
def test_token_export_round_trips_to_the_same_plan(tmp_path):
    out = str(tmp_path / "ln-tokens.yaml")
    text = export_profile(TokenLayerNormNet(), (2, 4, 4), timesteps=2, batch=2, name="ln-tokens", output=out)
    assert "  - layernorm: {name: body.3}" in text
    loaded = P.load(out)
    assert {l.path: l.params for l in loaded.all_layers}["body.3"] == dict(normalized_shape=(8,), eps=1e-5, affine=True, tokens=16)
    # nn.LayerNorm(C) between two transposes exports to the same token layer norm, and plans the same.
    transposed = str(tmp_path / "ln-transposed.yaml")
    text = export_profile(TransposedLayerNormNet(), (2, 4, 4), timesteps=2, batch=2, name="ln-tokens", output=transposed)
    assert "  - layernorm: {name: norm}" in text and "transpose" not in text
    assert [(l.kind, l.params, l.output_shape) for l in P.load(transposed).all_layers] == \
        [(l.kind, l.params, l.output_shape) for l in loaded.all_layers]
    for runtime in ("snnmem", "pytorch-cpu", "pytorch-cuda"):
        for strategy in ("bptt", "sltt", "checkpoint"):
            assert plan(transposed, strategy, runtime)["peakBytes"] == plan(out, strategy, runtime)["peakBytes"] > 0


@needs_snnmem
def test_check_measures_the_transposed_layer_norm_model_as_planned():
    """`check` of the model as users write it: the export's plan keeps the bytes the model itself keeps,
    layer by layer, and reaches its step peak within 1% (its norm found through the nn.LayerNorm module)."""
    from snnmem_torch.check import check_model
    result = check_model(TransposedLayerNormNet(), (2, 8, 8), timesteps=4, batch=4, strategy="bptt")
    assert result.agrees, result.peak_error_percent
    saved = {e["layer"]: e["bytes"] for e in result.measurement["savedByLayer"]}
    assert saved["norm"] == 4 * 4 * (8 * 64 * 4 + 2 * 64 * 4)  # the LIF's spikes it normalises, a mean and rstd per token


def test_transposed_layer_norm_on_other_channels_is_refused():
    # nn.LayerNorm([N, C]) on the transposed tokens normalises all of a sample's values, not each token's
    # channels: refused naming the module and the token form's fix, not exported as another norm.
    with pytest.raises(ExportError, match="(?s)module 'norm'.*nn.LayerNorm\\(8\\) on x.transpose"):
        export_profile(TransposedLayerNormNet(nn.LayerNorm([16, 8])), (2, 4, 4), timesteps=2, batch=2, name="bad")


def test_token_layer_norm_on_other_channels_is_refused():
    from snnmem_torch.token_layernorm import TokenLayerNorm
    # 16 channels on 8-channel tokens: refused naming the module, not exported as some other norm.
    with pytest.raises(ExportError, match="module 'body.3'"):
        export_profile(TokenLayerNormNet(TokenLayerNorm(16)), (2, 4, 4), timesteps=2, batch=2, name="bad")


TOKENS_PROFILE = os.path.join(ROOT, "python", "tests", "profiles", "layernorm-tokens.yaml")


def record_pair(first, second, x):
    """The allocations of second(first(x)) forward and backward, by layer ('first' or 'second')."""
    from snnmem_torch.allocations import record
    out = {}

    def forward():
        out["y"] = second(first(x))
    events = record(forward).events
    y = out["y"]
    gradient = torch.ones(y.shape)  # contiguous, as the next layer hands it back
    events += record(lambda: y.backward(gradient)).events
    # x's own .grad (AccumulateGrad clones a transposed gradient) is not the layers'
    return [e.bytes for e in events if e.bytes > 0 and e.op != "torch::autograd::AccumulateGrad"]


def test_token_norm_hands_transposed_views_to_its_neighbours():
    """What the layouts beside a token layer norm rest on: its output and the gradient it hands back
    are transposed views, a conv1d copies both (forward and backward), a batch norm's CPU backward
    then needs no input-sized work buffer, a LIF allocates the same as on contiguous tokens."""
    from snnmem_torch.token_layernorm import TokenLayerNorm
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        T, B, C, N = 2, 2, 16, 64
        size = T * B * C * N * 4
        x = torch.randn(T, B, C, N, requires_grad=True)
        norm = TokenLayerNorm(C)
        y = norm(x)
        assert not y.is_contiguous()
        y.backward(torch.ones_like(y))
        conv = layer.Conv1d(C, C, 1, step_mode="m")
        plain = record_pair(nn.Identity(), conv, torch.randn(T, B, C, N, requires_grad=True))
        transposed = record_pair(norm, conv, torch.randn(T, B, C, N, requires_grad=True))
        # the norm: its input copy and output (forward), its output gradient's and input's copies and
        # its input gradient (backward); the conv: a copy of its transposed input in forward and again
        # of the saved one in backward
        assert transposed.count(size) - plain.count(size) == 5 + 2
        transposed_gradient = record_pair(conv, norm, torch.randn(T, B, C, N, requires_grad=True))
        # the conv before the norm copies the transposed output gradient it is handed
        assert transposed_gradient.count(size) - plain.count(size) == 5 + 1
        bn = layer.BatchNorm1d(C, step_mode="m")
        assert record_pair(nn.Identity(), bn, torch.randn(T, B, C, N, requires_grad=True)).count(size) == 3
        assert record_pair(norm, bn, torch.randn(T, B, C, N, requires_grad=True)).count(size) == 5 + 2
        # LIF and IF (a fresh one each time: its v would carry the last graph), hard and soft reset
        for make in (lambda: neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m"),
                     lambda: neuron.IFNode(v_reset=None, step_mode="m")):
            on_contiguous = record_pair(nn.Identity(), make(), torch.randn(T, B, C, N, requires_grad=True))
            on_transposed = record_pair(lambda t: t.transpose(-1, -2), make(), torch.randn(T, B, N, C, requires_grad=True))
            assert on_transposed == on_contiguous
    finally:
        torch.set_num_threads(threads)


def test_token_norms_at_the_ends_of_residual_paths():
    """Pre-norm x + f(norm(x)): the norm's transposed input gradient is added in place into the identity
    shortcut's at the fork (no new tensor there; the layer before gets a contiguous gradient). Post-norm
    x + norm(f(x)): the residual's add takes its first operand's transposed layout."""
    from snnmem_torch.allocations import record
    from snnmem_torch.build import Residual
    from snnmem_torch.token_layernorm import TokenLayerNorm
    T, B, C, N = 2, 2, 16, 64
    pre = Residual(nn.Sequential(TokenLayerNorm(C), layer.Conv1d(C, C, 1, step_mode="m")), None)
    x = torch.randn(T, B, C, N, requires_grad=True)
    h = x * 1.0  # the fork's tensor, made by a node whose gradient autograd accumulates
    y = pre(h) * 1.0  # the residual's output gradient then a fresh tensor held by autograd alone, as a next layer's
    seen = {}
    h.register_hook(lambda g: seen.setdefault("fork", g))
    gradient = torch.ones(y.shape)
    events = record(lambda: y.backward(gradient)).events
    assert seen["fork"].is_contiguous()
    assert not [e for e in events if e.bytes > 0 and e.op == "TransposeBackward0"]
    post = Residual(nn.Sequential(layer.Conv1d(C, C, 1, step_mode="m"), TokenLayerNorm(C)), None)
    assert not post(torch.randn(T, B, C, N)).is_contiguous()


@needs_snnmem
def test_token_profile_layers_and_plans_follow_swift():
    prof = P.load(TOKENS_PROFILE)
    out = subprocess.run([SNNMEM, "plan", TOKENS_PROFILE, "--strategy", "bptt", "--layers", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    theirs = [(l["layer"], l["kind"], l["inputShape"], l["outputShape"]) for l in json.loads(out)["layers"]]
    assert [(l.path, l.kind, list(l.input_shape), list(l.output_shape)) for l in prof.all_layers] == theirs
    for runtime in ("pytorch-cpu", "pytorch-cuda"):
        planned = {e["layer"]: e["bytes"] for e in plan(TOKENS_PROFILE, "bptt", runtime)["savedByLayer"]}
        # ln1 keeps fc1's output (its transposed view costs nothing more) and a mean and rstd per token.
        assert planned["ln1"] == 2 * 2 * (32 * 64 * 4 + 2 * 64 * 4)


def test_token_norms_beside_batch_norms_on_cuda_keep_what_the_plan_keeps():
    """Fake CUDA: the norm saves its transposed input view (no new bytes) and a float32 mean and rstd
    per token; cuDNN's batch norm saves a contiguous copy of a transposed input in place of it, the
    norm's output then dies; a transposed output gradient is copied before cuDNN's backward."""
    from snnmem_torch import cuda_meta as cm
    from snnmem_torch.token_layernorm import TokenLayerNorm
    T, B, C, N = 2, 2, 16, 64
    with cm.fake_cuda():
        norm, bn = TokenLayerNorm(C), layer.BatchNorm1d(C, step_mode="m")
        x = torch.empty((T, B, C, N), requires_grad=True)
        after = cm.trace(lambda: bn(norm(x)), {"x": x}, {"norm": norm, "bn": bn})
        x = torch.empty((T, B, C, N), requires_grad=True)
        before = cm.trace(lambda: norm(bn(x)), {"x": x}, {"norm": norm, "bn": bn})
    saved = sorted((s.node, s.slot, s.shape, s.origin.split(":")[0]) for s in after.saved if s.nbytes >= 1024)
    assert saved == [("CudnnBatchNormBackward0", "input", (T * B, C, N), "new"),
                     ("NativeLayerNormBackward0", "input", (T, B, N, C), "input"),
                     ("NativeLayerNormBackward0", "result1", (T, B, N, 1), "new"),
                     ("NativeLayerNormBackward0", "result2", (T, B, N, 1), "new")]
    assert [a.op for a in after.forward if a.nbytes == T * B * C * N * 4 and not a.alive] == ["aten.native_layer_norm"]
    assert [a.op for a in before.backward if a.nbytes == T * B * C * N * 4][:2] == ["aten.native_layer_norm_backward", "aten.clone"]
