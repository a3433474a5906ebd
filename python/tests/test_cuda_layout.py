"""What PyTorch eager autograd + SpikingJelly 2.0 keep for backward on CUDA, checked without a GPU.

The layers run on fake CUDA tensors (see snnmem_torch/cuda_meta.py): the real module, SpikingJelly
and PyTorch code down to the kernels, with CUDA dispatch (AutogradCUDA, AutocastCUDA, the cuDNN
backend choice). The neuron's kernels are SpikingJelly's registered fake kernels; the provider
tests below hold those to the Triton provider's real allocation code. Sizes: T=4, B=2, C=8, 8x8.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from snnmem_torch import cuda_meta as cm  # noqa: E402

T, B, C, H, W = 4, 2, 8, 8, 8
SEQ = (T, B, C, H, W)
STEP = (B, C, H, W)
F32 = torch.float32
SEQ_BYTES = T * B * C * H * W * 4  # 16384
STEP_BYTES = B * C * H * W * 4  # 4096

NEURONS = {
    "lif_hard": ("lif", {}),
    "lif_soft": ("lif", {"v_reset": None}),
    "lif_detach_reset": ("lif", {"detach_reset": True}),
    "lif_no_decay_input": ("lif", {"decay_input": False}),
    "if_hard": ("if", {}),
    "if_soft_detach": ("if", {"v_reset": None, "detach_reset": True}),
}


@pytest.fixture(scope="module")
def neurons():
    out = {}
    with cm.fake_cuda():
        for name, (kind, opts) in NEURONS.items():
            tr, node = cm.neuron_trace(kind, SEQ, **opts)
            out[name] = (tr, tuple(node.v.shape), node.v.dtype, node.v_seq)
    return out


@pytest.fixture(scope="module")
def layers():
    with cm.fake_cuda():
        return {
            None: cm.layer_traces(T, B, C, H, W),
            torch.float16: cm.layer_traces(T, B, C, H, W, autocast=torch.float16),
            torch.bfloat16: cm.layer_traces(T, B, C, H, W, autocast=torch.bfloat16),
        }


def _sig(saved):
    return sorted((s.slot, s.shape, s.dtype, s.origin.split(":")[0]) for s in saved)


# --- the CUDA neuron: one fused autograd op --------------------------------------------------


def test_cuda_autograd_is_the_registered_op_and_cpu_is_not():
    import spikingjelly._ops.lif  # noqa: F401  (registers sj_lif)
    import spikingjelly._ops.if_  # noqa: F401
    for op in ("sj_lif::forward", "sj_if::forward"):
        keys = cm.dispatch_keys(op)
        # CPU autograd is an explicit AutogradCPU kernel (SpikingJelly's Python step loop);
        # CUDA has none of its own, so the Autograd alias (torch.library.register_autograd) serves it.
        assert keys["AutogradCPU"] and keys["Autograd"] and not keys["AutogradCUDA"]
        assert keys["CUDA"] and keys["Meta"]
    # The contrast on real CPU tensors: the module's spikes come from the step loop, not the op.
    from spikingjelly.activation_based import neuron
    node = neuron.LIFNode(step_mode="m")
    spikes = node(torch.zeros(2, 1, 3, requires_grad=True))
    assert "sj_lif" not in type(spikes.grad_fn).__name__


def test_eager_provider_on_h200_is_triton():
    for kind in ("lif", "if"):
        chosen = cm.eager_provider(kind)
        # priority cuda (native extension) > triton > torch; the PyPI wheel ships no native build
        assert not chosen["native_built"]
        assert chosen["implementation"] == "triton"
        assert "cuda" in chosen["unavailable"]


@pytest.mark.parametrize("name", list(NEURONS))
def test_neuron_saves_h_seq_x_seq_v_init(neurons, name):
    tr, v_shape, v_dtype, v_seq = neurons[name]
    op = "sj_lif.forward" if name.startswith("lif") else "sj_if.forward"
    assert tr.ops == ["aten.select", "aten.full_like", op]
    assert tr.packed == 3
    assert [(s.slot, s.shape, s.dtype, s.origin, s.nbytes) for s in tr.saved] == [
        ("saved_tensors[0]", SEQ, F32, f"new:{op}", SEQ_BYTES),  # h_seq: charge before fire/reset
        ("saved_tensors[1]", SEQ, F32, "input:x_seq", SEQ_BYTES),  # x_seq itself (kept for double backward)
        ("saved_tensors[2]", STEP, F32, "new:aten.full_like", STEP_BYTES),  # v_init
    ]
    assert tr.saved_new_bytes() == SEQ_BYTES + STEP_BYTES
    # forward allocates v_init, then the op's spike_seq, v_final, h_seq; nothing is transient
    assert [(a.op, a.shape, a.dtype, a.alive) for a in tr.forward] == [
        ("aten.full_like", STEP, F32, True),
        (op, SEQ, F32, True),  # spike_seq (input dtype), the output
        (op, STEP, F32, True),  # v_final: the module's v until reset_net
        (op, SEQ, F32, True),  # h_seq: only saved
    ]
    assert (v_shape, v_dtype, v_seq) == (STEP, F32, None)
    # backward: zeros for the unused v_final gradient, then grad_x_seq and grad_v_init
    assert [(a.op, a.shape, a.dtype) for a in tr.backward] == [
        ("aten.zeros_like", STEP, F32),
        (op.replace("forward", "backward"), SEQ, F32),
        (op.replace("forward", "backward"), STEP, F32),
    ]
    assert tr.grads == {"x_seq": (SEQ, F32)}


def test_store_v_seq_keeps_the_trace_and_a_final_copy():
    with cm.fake_cuda():
        tr, node = cm.neuron_trace("lif", SEQ, store_v_seq=True)
        v_seq = (tuple(node.v_seq.shape), node.v_seq.dtype)
    assert [(s.shape, s.origin.split(":")[0]) for s in tr.saved] == [(SEQ, "new"), (SEQ, "input"), (STEP, "new")]
    assert v_seq == (SEQ, F32)
    assert [(a.op, a.shape, a.alive) for a in tr.forward] == [
        ("aten.full_like", STEP, True),
        ("sj_lif.forward", SEQ, True),  # spikes
        ("sj_lif.forward", SEQ, True),  # v_seq, held by the module
        ("sj_lif.forward", SEQ, True),  # h_seq
        ("aten.clone", STEP, True),  # v = v_seq[-1].clone()
    ]
    # the gradient of the unused v_seq is a [T, ...] zeros in backward
    assert (tr.backward[0].op, tr.backward[0].shape) == ("aten.zeros_like", SEQ)


@pytest.mark.parametrize("kind,opts", [("lif", {}), ("lif", {"v_reset": None}), ("lif", {"detach_reset": True}),
                                       ("if", {}), ("lif", {"store_v_seq": True})])
def test_fake_kernels_allocate_what_the_triton_provider_allocates(kind, opts):
    with cm.fake_cuda():
        real = cm.provider_outputs(kind, SEQ, **opts)
        fake = cm.fake_outputs(kind, SEQ, **opts)
    assert real["forward"] == fake["forward"]
    assert real["backward"] == fake["backward"]
    voltages = SEQ if opts.get("store_v_seq") else STEP
    assert [(s, d) for s, d, _ in real["forward"]] == [(SEQ, F32), (voltages, F32), (SEQ, F32)]
    assert [(s, d) for s, d, _ in real["backward"]] == [(SEQ, F32), (STEP, F32)]
    # the kernels get exactly these buffers (inputs first), no workspace
    (fwd_name, fwd_args), (bwd_name, bwd_args) = real["launches"]
    assert fwd_name == "_forward_kernel" and bwd_name == "_backward_kernel"
    assert [s for s, _, _ in fwd_args] == [SEQ, STEP, SEQ, voltages, SEQ]
    assert [s for s, _, _ in bwd_args] == [SEQ, voltages, SEQ, SEQ, STEP]


def test_half_input_falls_back_to_the_step_loop():
    """Under autocast the neuron sees a half input; the module materializes v in that dtype and
    SpikingJelly's fused op requires a float32 state, so the Torch reference loop runs on CUDA."""
    for dt in (torch.float16, torch.bfloat16):
        with cm.fake_cuda():
            with cm.fake_cuda_autocast(dt):
                hard, _ = cm.neuron_trace("lif", SEQ, dtype=dt)
                soft, _ = cm.neuron_trace("lif", SEQ, dtype=dt, v_reset=None)
        step = (B, C, H, W)
        assert "sj_lif.forward" not in hard.ops and hard.ops.count("aten.stack") == 1
        assert hard.output == (SEQ, dt)
        gpu = [s for s in hard.saved if s.origin != "cpu-scalar"]
        assert hard.packed == len(gpu) == 3 * T
        # per timestep: the surrogate's h - threshold; the hard reset (1 - s) * h saves h and 1 - s
        assert sorted((s.node, s.slot, s.origin) for s in gpu if not s.state_only) == sorted(
            [("sigmoidBackward", "saved_tensors[0]", "new:aten.sub")] * T
            + [("MulBackward0", "other", "new:aten.add"), ("MulBackward0", "self", "new:aten.rsub")] * (T - 1))
        assert all(s.shape == step and s.dtype == dt for s in gpu)
        # the last step's reset hangs off the module's v only: backward never frees it
        assert sorted(s.slot for s in gpu if s.state_only) == ["other", "self"]
        soft_gpu = [s for s in soft.saved if s.origin != "cpu-scalar"]
        assert [(s.node, s.shape, s.dtype) for s in soft_gpu] == [("sigmoidBackward", step, dt)] * T


# --- the other layers --------------------------------------------------------------------------


N = T * B  # SpikingJelly runs stateless layers on [T*B, ...]


def test_conv_saves_input_and_weight_only(layers):
    for name in ("conv", "conv_bias"):
        tr = layers[None][name]
        assert _sig(tr.saved) == [("input", (N, C, H, W), F32, "input"), ("weight", (C, C, 3, 3), F32, "parameter")]
        assert tr.saved_new_bytes() == 0
        assert [(a.op, a.shape) for a in tr.forward] == [("aten.convolution", (N, C, H, W))]


def test_batch_norm_is_cudnn_with_fp32_stats_and_a_reserve(layers):
    tr = layers[None]["batch_norm"]
    assert "aten.cudnn_batch_norm" in tr.ops
    assert _sig(tr.saved) == [
        ("input", (N, C, H, W), F32, "input"),
        ("result1", (C,), F32, "new"),  # save_mean
        ("result2", (C,), F32, "new"),  # save_invstd
        ("result3", (0,), torch.uint8, "new"),  # reserve: the fake kernel's 0; cuDNN sizes it at run time
        ("running_mean", (C,), F32, "buffer"),
        ("running_var", (C,), F32, "buffer"),
        ("weight", (C,), F32, "parameter"),
    ]
    assert [(a.op, a.shape) for a in tr.backward] == [
        ("aten.clone", (0,)),  # the reserve, cloned for the backward call
        ("aten.cudnn_batch_norm_backward", (N, C, H, W)), ("aten.cudnn_batch_norm_backward", (C,)),
        ("aten.cudnn_batch_norm_backward", (C,))]


def test_batch_norm_backend_choice():
    with cm.fake_cuda():
        def backend(dt):
            x = torch.empty(N, C, H, W, dtype=dt)
            w, b, rm, rv = (torch.empty(C) for _ in range(4))
            return torch._C._select_batch_norm_backend(x, w, b, rm, rv, True, 1e-5)
        Backend = torch._C._BatchNormBackend
        assert backend(F32) == Backend.Cudnn
        assert backend(torch.float16) == Backend.Cudnn
        assert backend(torch.bfloat16) == Backend.Native
    x = torch.empty(N, C, H, W, device="meta")
    w = torch.empty(C, device="meta")
    assert torch._C._select_batch_norm_backend(x, w, w, w, w, True, 1e-5) == torch._C._BatchNormBackend.Native


def test_pools_flatten_linear_mean_loss(layers):
    L = layers[None]
    assert _sig(L["max_pool"].saved) == [("result1", (N, C, H // 2, W // 2), torch.int64, "new"),
                                         ("self", (N, C, H, W), F32, "input")]
    assert _sig(L["avg_pool"].saved) == [("self", (N, C, H, W), F32, "input")]
    assert L["adaptive_avg_pool_1x1"].saved == [] and "aten.mean" in L["adaptive_avg_pool_1x1"].ops
    assert L["flatten"].saved == [] and L["flatten"].forward == []
    assert _sig(L["linear"].saved) == [("mat1", (N, C * H * W), F32, "input"),
                                       ("mat2", (C * H * W, 10), F32, "parameter")]
    assert L["mean_over_T"].saved == [] and L["mean_over_T"].backward[0].shape == (T, B, 10)
    assert _sig(L["cross_entropy"].saved) == [("result", (B, 10), F32, "new"), ("self", (B, 10), F32, "new"),
                                              ("target", (B,), torch.int64, "input"),
                                              ("total_weight", (), F32, "new")]
    assert L["cross_entropy"].saved_new_bytes() == B * 10 * 4 + 4  # log_softmax output (shared) + total_weight


@pytest.mark.parametrize("dt", [torch.float16, torch.bfloat16])
def test_autocast_casts(layers, dt):
    L = layers[dt]
    # conv and linear save the low-precision copies: the input cast (a float32 input) and the weight cast
    assert _sig(L["conv"].saved) == [("input", (N, C, H, W), dt, "new"), ("weight", (C, C, 3, 3), dt, "new")]
    assert _sig(L["linear"].saved) == [("mat1", (N, C * H * W), dt, "new"), ("mat2", (C * H * W, 10), dt, "new")]
    assert L["conv"].output[1] == dt
    # batch norm keeps float32 statistics; cuDNN for half, the native kernel for bfloat16
    bn = L["batch_norm"]
    assert ("aten.cudnn_batch_norm" in bn.ops) == (dt == torch.float16)
    assert [s.dtype for s in bn.saved if s.slot in ("result1", "result2")] == [F32, F32]
    assert bn.output[1] == dt
    # the float32 gradient of a float32 leaf comes back through a cast
    assert L["conv"].grads["x_seq"] == ((T, B, C, H, W), F32)


def test_autocast_casts_a_weight_once_per_region():
    with cm.fake_cuda():
        casts = cm.autocast_weight_casts(torch.float16, uses=3)
    assert [(a.shape, a.dtype) for a in casts] == [((8, 8, 3, 3), torch.float16)]


# --- on a real GPU (skipped without one) -------------------------------------------------------


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_real_gpu_matches_the_fake_device():
    result = cm.gpu_check(SEQ)
    assert result["mismatches"] == {}, result["mismatches"]
    assert result["neuron_implementation"]["lif"]["implementation"] in ("triton", "cuda")


@pytest.mark.parametrize("dt", [torch.float16, torch.bfloat16])
def test_network_under_autocast_on_cuda(dt):
    """cifarnet layer by layer as bptt runs it under autocast on fake CUDA: half spikes from the
    step loop (no fused neuron op), conv/linear keep half copies of their weights, the first conv a
    half copy of the float32 input; the loss keeps a half log_softmax and a float32 copy of it."""
    traces = dict(cm.network_traces(os.path.join(os.path.dirname(__file__), "..", "..", "profiles", "cifarnet.yaml"),
                                    T=2, B=1, autocast=dt))
    conv1 = {s.slot: s for s in traces["conv1"].saved}
    assert (conv1["input"].dtype, conv1["input"].origin) == (dt, "new:aten._to_copy")
    assert (conv1["weight"].dtype, conv1["weight"].origin) == (dt, "new:aten._to_copy")
    conv2 = {s.slot: s for s in traces["conv2"].saved}
    assert (conv2["input"].dtype, conv2["input"].origin) == (dt, "input:input")  # the spikes are already half
    lif = traces["lif1"]
    assert "sj_lif.forward" not in lif.ops and lif.output[1] == dt
    gpu = [s for s in lif.saved if s.origin != "cpu-scalar"]
    assert len(gpu) == 3 * 2 and all(s.dtype == dt and s.shape == (1, 64, 32, 32) for s in gpu)
    bn = traces["bn1"]
    assert ("aten.cudnn_batch_norm" in bn.ops) == (dt == torch.float16) and bn.output[1] == dt
    loss = {(s.node, s.slot): s.dtype for s in traces["loss"].saved}
    assert loss[("LogSoftmaxBackward0", "result")] == dt and loss[("NllLossBackward0", "self")] == torch.float32
    # backward runs outside autocast: the bias gradient is summed in half, then cast to float32
    fc_back = [(a.op, a.dtype) for a in traces["fc"].backward]
    assert ("aten.sum", dt) in fc_back and ("aten._to_copy", torch.float32) in fc_back


def test_spiking_self_attention_on_cuda_keeps_what_the_plan_keeps(tmp_path):
    """Spikformer's SSA on fake CUDA: the products keep q, kT, v (the heads' contiguous copies) and the
    scaled map, nothing else (no softmax); conv1d keeps its input and weight; the pytorch-cuda plan
    attributes the same bytes to the attention layer."""
    import json
    import subprocess
    from test_transformer import SNNMEM, SSA
    path = tmp_path / "ssa.yaml"
    path.write_text(SSA)
    traces = dict(cm.network_traces(str(path), T=2, B=2))
    attn = traces["attn"]
    products = [s for s in attn.saved if s.node == "BmmBackward0"]
    tb, heads, tokens, width = 2 * 2, 2, 16, 4
    assert sorted((s.slot, s.shape) for s in products) == sorted([
        ("self", (tb * heads, tokens, width)), ("mat2", (tb * heads, width, tokens)),
        ("self", (tb * heads, tokens, tokens)), ("mat2", (tb * heads, tokens, width))])
    assert all(s.is_new for s in products) and not any("Softmax" in s.node for s in attn.saved)
    convs = [s for s in attn.saved if s.node == "ConvolutionBackward0"]
    assert sorted(s.slot for s in convs) == ["input", "input", "input", "input", "weight", "weight", "weight", "weight"]
    if os.path.exists(SNNMEM):
        plan = json.loads(subprocess.run([SNNMEM, "plan", str(path), "--runtime", "pytorch-cuda", "--strategy", "bptt",
                                          "--format", "json"], capture_output=True, text=True, check=True).stdout)
        saved = {e["layer"]: e["bytes"] for e in plan["strategies"][0]["savedByLayer"]}
        assert saved["attn/main/ssa"] == sum(s.nbytes for s in products)


def test_spike_driven_self_attention_on_cuda_keeps_what_the_plan_keeps(tmp_path):
    """SDSA on fake CUDA: k.mul(v) keeps both head copies, q.mul(spikes) keeps q's and the talking-heads
    neuron's spikes ([T*B, heads, 1, width]), the column sum nothing; the pytorch-cuda plan attributes
    the same bytes to the attention layer."""
    import json
    import subprocess
    from test_transformer import SNNMEM, SSA
    path = tmp_path / "sdsa.yaml"
    path.write_text(SSA.replace("kind: ssa", "kind: sdsa"))
    attn = dict(cm.network_traces(str(path), T=2, B=2))["attn"]
    products = [s for s in attn.saved if s.node == "MulBackward0" and s.shape[-2:] in ((16, 4), (1, 4))]
    assert sorted(s.shape for s in products) == [(2, 2, 2, 1, 4)] + [(2, 2, 2, 16, 4)] * 3
    assert not any(s.node == "SumBackward1" and s.nbytes for s in attn.saved)
    if os.path.exists(SNNMEM):
        plan = json.loads(subprocess.run([SNNMEM, "plan", str(path), "--runtime", "pytorch-cuda", "--strategy", "bptt",
                                          "--format", "json"], capture_output=True, text=True, check=True).stdout)
        saved = {e["layer"]: e["bytes"] for e in plan["strategies"][0]["savedByLayer"]}
        assert saved["attn/main/ssa"] == sum(s.nbytes for s in products)


def test_recurrent_layer_on_cuda_keeps_what_the_plan_keeps(tmp_path):
    """The recurrent layer on fake CUDA: its float32 single-step neuron is SpikingJelly's fused op on one
    timestep, which saves h, its input (the linear's output I_t) and its v_init: the zeros on the first
    timestep, the previous timestep's v_final after it. With the concatenation that is four new tensors
    per timestep, no surrogate temporaries; the pytorch-cuda plan attributes the same bytes to the layer."""
    import json
    import subprocess
    from test_recurrent import REC, SNNMEM
    path = tmp_path / "rec.yaml"
    path.write_text(REC)
    T, B, inputs, out = 3, 2, 12, 8
    rec = dict(cm.network_traces(str(path), T=T, B=B))["rec1"]
    assert rec.ops.count("sj_lif.forward") == T and "aten.sigmoid" not in rec.ops
    new = [s for s in rec.saved if s.is_new]
    assert sorted((s.origin, s.shape) for s in new) == sorted(
        [("new:aten.cat", (B, inputs + out))] * T + [("new:aten.addmm", (1, B, out))] * T
        + [("new:sj_lif.forward", (1, B, out))] * T  # h
        + [("new:aten.full_like", (B, out))] + [("new:sj_lif.forward", (B, out))] * (T - 1))  # v_init, then v_final
    assert all(s.dtype == torch.float32 for s in new)
    if os.path.exists(SNNMEM):
        plan = json.loads(subprocess.run([SNNMEM, "plan", str(path), "--runtime", "pytorch-cuda", "--strategy", "bptt",
                                          "--format", "json"], capture_output=True, text=True, check=True).stdout)
        saved = {e["layer"]: e["bytes"] for e in plan["strategies"][0]["savedByLayer"]}
        assert saved["rec1"] == sum(s.nbytes for s in new)
