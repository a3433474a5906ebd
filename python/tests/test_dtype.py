"""`--dtype`: mixed precision as users run it (a float32 model under torch.autocast, float16 with a
GradScaler), on the tiny profiles so that the whole file runs in a few seconds."""

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY

from snnmem_torch import output
from snnmem_torch import profile as P
from snnmem_torch.measure import measure
from snnmem_torch.strategies import Trainer

# TINY with batch norm (runs in the input dtype under autocast) and a pool between conv and linear.
TINY_BN = """
input: {channels: 1, height: 4, width: 4}
timesteps: 2
batch: 2
optimizer: {type: sgd, momentum: 0.9}
layers:
  - conv: {name: conv, out: 2, kernel: 3, padding: 1}
  - batchnorm: {name: bn}
  - neuron: {name: lif}
  - avgpool: {name: pool, kernel: 2}
  - flatten
  - linear: {name: fc, out: 3}
"""

HALF = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def _watch(trainer):
    """Records, for every conv/linear/bn/neuron forward: autocast state and input/output dtypes."""
    seen = []

    def hook(module, args, out):
        seen.append((type(module).__name__, torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"),
                     args[0].dtype, out.dtype))
    for path, module in trainer.net.layers.items():
        if module is not None and trainer.net.kinds[path] in ("conv", "batchnorm", "neuron", "linear"):
            module.register_forward_hook(hook)
    return seen


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("strategy", ["bptt", "sltt", "checkpoint"])
def test_autocast_over_a_float32_model(strategy, dtype, write_profile):
    prof = P.load(write_profile(TINY_BN))
    trainer = Trainer(prof, strategy, dtype=dtype)
    half = HALF[dtype]
    seen = _watch(trainer)
    grads = {}
    def keep(p, name):
        grads.setdefault(name, p.grad.dtype)

    for name, p in trainer.net.named_parameters():
        p.register_post_accumulate_grad_hook(lambda p, name=name: keep(p, name))
    trainer.warm_up()
    trainer.step()
    # autocast is on in every forward (and in checkpoint's recomputation), in the requested dtype
    assert seen and all(enabled and region == half for _, enabled, region, _, _ in seen)
    assert {(kind, out) for kind, _, _, _, out in seen} >= {("Conv2d", half), ("BatchNorm2d", half),
                                                            ("LIFNode", half), ("Linear", half)}
    assert [i for kind, _, _, i, _ in seen if kind == "Conv2d"][0] == torch.float32  # the batch stays float32
    # master weights, their gradients and the optimizer state stay float32
    assert all(p.dtype == torch.float32 for p in trainer.net.parameters())
    assert grads and set(grads.values()) == {torch.float32}
    assert all(v.dtype == torch.float32 for s in trainer.optimizer.state.values() for v in s.values())
    assert trainer.x.dtype == torch.float32
    assert (trainer.scaler is not None) == (dtype == "float16")
    if strategy == "checkpoint":
        assert trainer.recompute_autocast and set(trainer.recompute_autocast) == {dtype}
    assert not torch.is_autocast_enabled("cpu")  # nothing leaks out of the step


def test_measure_float16_json(write_profile):
    m = measure(write_profile(TINY_BN), "bptt", dtype="float16")
    assert m["dtype"] == "float16" and m["autocast"]["dtype"] == "float16" and m["autocast"]["gradScaler"]
    assert m["gradScaler"]["measuredStepTaken"] and m["gradScaler"]["warmUpSteps"] >= 1
    assert m["liveAtStart"]["gradScaler"] == 8  # scale (float32 []) + growth tracker (int32 [])
    trainer = Trainer(P.load(write_profile(TINY_BN)), "bptt")
    assert m["liveAtStart"]["parameters"] == sum(p.numel() * 4 for p in trainer.net.parameters())
    assert m["streamSumBytes"] == 0 and "warning" not in m
    layers = {e["layer"]: e["tensors"] for e in m["savedByLayer"]}
    conv = {t["name"]: t for t in layers["conv"]}
    weight = conv["ConvolutionBackward0._saved_weight"]
    assert weight["dtype"] == "float16" and weight["castOf"] == "conv.weight" and weight["role"] == "activation"
    assert conv["ConvolutionBackward0._saved_input"]["dtype"] == "float16"  # the float32 x_seq, cast
    assert {t["dtype"] for t in layers["lif"]} == {"float16"}
    fc = {t["name"]: t for t in layers["fc"]}
    assert fc["AddmmBackward0._saved_mat2"]["castOf"] == "fc.weight"
    bn = {t["name"]: t["dtype"] for t in layers["bn"]}
    assert bn["NativeBatchNormBackward0._saved_input"] == "float16"
    assert bn["NativeBatchNormBackward0._saved_result1"] == "float32"
    # the loss runs in float32 on the CPU (cross_entropy is on autocast's float32 list)
    assert {t["dtype"] for t in layers["loss"] if t["role"] == "activation"} == {"float32"}
    assert any(e["phase"] == "optimizer" and e["kernel"] == "aten::reciprocal" for e in m["allocations"])  # unscale_


def test_measure_bfloat16_sltt_and_checkpoint(write_profile):
    path = write_profile(TINY)
    sltt = measure(path, "sltt", dtype="bfloat16", stream=False)
    assert sltt["dtype"] == "bfloat16" and sltt["gradScaler"] is None and "gradScaler" not in sltt["liveAtStart"]
    assert sltt["autocast"]["regions"].startswith("per timestep")
    # one autocast region per timestep: every timestep casts the weights again and saves its copies
    assert len(set(sltt["savedBytesPerTimestep"])) == 1
    ckpt = measure(path, "checkpoint", segment=2, dtype="bfloat16", verify=True)
    assert ckpt["autocast"]["recomputeAutocast"] == ["bfloat16", "bfloat16"]  # T=4, k=2: two recomputations
    # k < T under mixed precision: compared with the same segments run without checkpointing
    assert ckpt["verification"] == {"reference": "segmented", "maxAbsGradDiff": 0.0}
    assert any(e["phase"] == "recompute" for e in ckpt["allocations"])


def test_float32_is_unchanged(write_profile):
    m = measure(write_profile(TINY), "bptt", timesteps=1, stream=False)
    assert m["dtype"] == "float32" and m["autocast"] is None and m["gradScaler"] is None
    assert all(t["dtype"] == "float32" and "castOf" not in t for e in m["savedByLayer"] for t in e["tensors"]
               if t["role"] == "activation")


def test_cli_dtype_option(tmp_path, write_profile):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__)), PYTHONWARNINGS="ignore")
    out = tmp_path / "m.json"
    ok = subprocess.run([sys.executable, "-m", "snnmem_torch", "measure", write_profile(TINY), "--timesteps", "1",
                         "--dtype", "bfloat16", "-o", str(out)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "bfloat16" in ok.stdout.splitlines()[0]
    assert output.read(str(out))["dtype"] == "bfloat16"
    bad = subprocess.run([sys.executable, "-m", "snnmem_torch", "measure", write_profile(TINY), "--dtype", "int8"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "--dtype" in bad.stderr


def test_compact_and_minimal_streams(write_profile):
    m = measure(write_profile(TINY), "bptt", timesteps=1)
    full, compact, minimal = (output.dumps(m, form) for form in ("full", "compact", "minimal"))
    assert len(minimal) < len(compact) < len(full)
    back = json.loads(compact)
    for event in back["allocations"]:
        event.setdefault("timestep", None)
    assert back == json.loads(json.dumps(m))
    slim = json.loads(minimal)["allocations"]
    assert all("kernel" not in e for e in slim)
    # the numbered addresses pair every free with its allocation as the real ones do
    real = [e["address"] for e in m["allocations"]]
    numbered = [e["address"] for e in slim]
    assert [real.index(a) for a in real] == [numbered.index(a) for a in numbered]
    assert [(e["bytes"], e["op"], e["phase"], e["layer"]) for e in slim] == \
        [(e["bytes"], e["op"], e["phase"], e["layer"]) for e in m["allocations"]]
