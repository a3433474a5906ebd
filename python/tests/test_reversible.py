"""Reversible stages (RevSNN): the builder, revsnn's gradients and reconstruction, what it keeps."""

import glob
import json
import math
import os
import subprocess

import pytest
from conftest import REVERSIBLE, ROOT, SNNMEM, profile_path

from snnmem_torch import output, streamfile
from snnmem_torch import profile as P
from snnmem_torch.build import build
from snnmem_torch.errors import ProfileError, UsageError
from snnmem_torch.measure import measure
from snnmem_torch.reversible import ReversibleStage, verify
from snnmem_torch.strategies import Trainer

FIXTURES = os.path.join(ROOT, "Tests", "PlannerTests", "Fixtures", "pytorch")

# Two blocks with different F and G (G two layers deeper), LIF and IF neurons, 8 channels split in 4 + 4.
TINY_REV = """
name: tiny-rev
input: {channels: 3, height: 8, width: 8}
timesteps: 3
batch: 2
neuron: {type: lif, tau: 2.0, reset: hard}
optimizer: {type: sgd, momentum: 0.9}
layers:
  - conv: {name: stem, out: 8, kernel: 3, padding: 1}
  - batchnorm: {name: stem_bn}
  - reversible:
      name: rev
      blocks: 2
      f:
        - neuron: {name: sn}
        - conv: {name: conv, out: 4, kernel: 3, padding: 1}
        - batchnorm: {name: bn}
      g:
        - neuron: {name: sn1, type: if}
        - conv: {name: conv1, out: 4, kernel: 3, padding: 1}
        - batchnorm: {name: bn1}
        - neuron: {name: sn2}
        - conv: {name: conv2, out: 4, kernel: 1}
  - neuron: {name: head_sn}
  - globalavgpool: {name: pool}
  - flatten
  - linear: {name: fc, out: 3}
"""


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("rev") / "tiny-rev.yaml"
    path.write_text(TINY_REV)
    return str(path)


@pytest.fixture(scope="module")
def tiny_measured(tiny_path):
    return {s: measure(tiny_path, s) for s in ("bptt", "revsnn")}


@pytest.mark.parametrize("name", REVERSIBLE)
def test_builds_the_reversible_profiles(name):
    prof = P.load(profile_path(name))
    net = build(prof)
    assert list(net.layers) == [layer.path for layer in prof.all_layers]
    stages = [layer for layer in prof.layers if layer.kind == "reversible"]
    assert stages
    for layer in stages:
        module = net.layers[layer.path]
        assert isinstance(module, ReversibleStage) and module.mode == "autograd"
        assert [b.path for b in module.blocks] == [b.path for b in layer.blocks]
        for block, spec in zip(module.blocks, layer.blocks):
            assert [l.path for l in spec.f][0] == spec.path + "/f/" + spec.f[0].name
            assert len(block.f) == len(spec.f) and len(block.g) == len(spec.g)
            for sub in spec.f + spec.g:
                assert sub.input_shape == (layer.input_shape[0] // 2, *layer.input_shape[1:])


@pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")
@pytest.mark.parametrize("name", REVERSIBLE)
def test_reversible_layers_equal_snnmem_plan(name):
    out = subprocess.run([SNNMEM, "plan", profile_path(name), "--strategy", "revsnn", "--runtime", "snnmem", "--layers",
                          "--format", "json"], capture_output=True, text=True, check=True).stdout
    theirs = [(l["layer"], l["kind"], l["inputShape"], l["outputShape"]) for l in json.loads(out)["layers"]]
    mine = [(l.path, "avgpool" if l.kind == "globalavgpool" else l.kind, list(l.input_shape), list(l.output_shape))
            for l in P.load(profile_path(name)).all_layers]
    assert mine == theirs


@pytest.mark.parametrize("change,problem", [
    (("out: 8, kernel: 3, padding: 1}", "out: 7, kernel: 3, padding: 1}"), "splits its 7 input channels"),
    (("{name: conv, out: 4,", "{name: conv, out: 5,"), "reversible `f` must map a half 4x8x8 to the same shape"),
])
def test_reversible_profile_errors_equal_snnmem(change, problem, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(TINY_REV.replace(*change))
    with pytest.raises(ProfileError) as info:
        P.load(str(path))
    assert problem in str(info.value)
    if os.path.exists(SNNMEM):
        swift = subprocess.run([SNNMEM, "plan", str(path)], capture_output=True, text=True)
        assert swift.returncode == 2 and str(info.value) == swift.stderr.strip()


def test_revsnn_gradients_equal_bptt_and_inputs_are_reconstructed(tiny_path):
    v = verify(P.load(tiny_path), batch=2, timesteps=3)
    assert v["reference"] == "bptt"
    assert v["maxRelGradDiff"] < 1e-5 and v["maxAbsGradDiff"] < 1e-5
    assert [r["block"] for r in v["reconstruction"]] == ["rev/block0", "rev/block1"]
    assert all(r["maxRelError"] < 1e-6 for r in v["reconstruction"])


def test_revsnn_keeps_only_the_stage_output(tiny_measured):
    bptt, rev = tiny_measured["bptt"], tiny_measured["revsnn"]
    by_layer = {e["layer"]: e for e in rev["savedByLayer"]}
    inside = [name for name in by_layer if name.startswith("rev/")]
    assert inside == []  # F and G keep nothing outside the recomputation
    (kept,) = by_layer["rev"]["tensors"]
    assert kept["name"] == "RevSNNStageBackward.ctx.y" and kept["shape"] == [3, 2, 8, 8, 8]
    assert by_layer["rev"]["bytes"] == 3 * 2 * 8 * 8 * 8 * 4
    bptt_layers = {e["layer"]: e["bytes"] for e in bptt["savedByLayer"]}
    assert "rev" not in bptt_layers and bptt_layers["rev/block0/f/sn"] == 3 * 3 * 2 * 4 * 8 * 8 * 4
    outside = {k: v for k, v in bptt_layers.items() if not k.startswith("rev")}
    assert {k: by_layer[k]["bytes"] for k in outside} == outside  # the layers around the stage keep the same
    assert rev["savedBytes"] < 0.5 * bptt["savedBytes"]
    for m in (bptt, rev):
        assert m["streamSumBytes"] == 0 and m["liveAtEndBytes"] == m["liveAtStartBytes"]
    phases = {(e["phase"], e["layer"]) for e in rev["allocations"]}
    assert ("recompute", "rev/block1/g/conv1") in phases and ("recompute", "rev/block0/f/sn") in phases
    assert ("backward", "rev/block0/f/conv") in phases and ("backward", "rev") in phases
    assert not any(e["phase"] == "recompute" for e in bptt["allocations"])
    assert rev["stepPeakBytes"] < bptt["stepPeakBytes"]


def test_revsnn_is_refused_where_it_cannot_apply(tiny_path):
    with pytest.raises(UsageError, match="needs a reversible stage"):
        Trainer(P.load(profile_path("digits")), "revsnn")
    with pytest.raises(UsageError, match="autocast"):
        Trainer(P.load(tiny_path), "revsnn", dtype="bfloat16")


def test_other_strategies_run_through_reversible_stages(tiny_path):
    prof = P.load(tiny_path)
    for strategy in ("sltt", "checkpoint"):
        trainer = Trainer(prof, strategy, timesteps=2)
        assert trainer.step() > 0


REV_FIXTURES = sorted(p for p in glob.glob(os.path.join(FIXTURES, "rev*.json")))


@pytest.mark.skipif(not REV_FIXTURES, reason="no reversible fixtures: bash scripts/pytorch-reversible-fixtures.sh")
def test_reversible_fixtures():
    found = {}
    for path in REV_FIXTURES:
        m = streamfile.read(path)
        found[(m["profile"], m["strategy"], m["timesteps"], m["batch"])] = m
        assert os.path.getsize(path) <= 300_000
        stream = m["allocations"]
        assert stream and len(stream) == m["allocationCount"], path
        assert sum(e["bytes"] for e in stream) == m["streamSumBytes"] == 0
        running = best = 0
        for e in stream:
            running += e["bytes"]
            best = max(best, running)
        assert m["liveAtStartBytes"] + best == m["stepPeakBytes"]
        if m["strategy"] == "revsnn":
            assert m["verification"]["maxRelGradDiff"] < 1e-5 and m["verification"]["maxReconstructionError"] < 1e-5
    for profile in ("revsresnet21", "revvgg13"):
        for t, b in ((2, 2), (4, 2)):
            bptt, rev = found[(profile, "bptt", t, b)], found[(profile, "revsnn", t, b)]
            stages = [layer for layer in P.load(profile_path(profile)).layers if layer.kind == "reversible"]
            inside = sum(e["bytes"] for e in bptt["savedByLayer"]
                         if any(e["layer"].startswith(stage.path + "/") for stage in stages))
            outputs = sum(t * b * 4 * math.prod(stage.output_shape) for stage in stages)
            # revsnn keeps each stage's output instead of everything its F and G keep under bptt
            assert rev["savedBytes"] == bptt["savedBytes"] - inside + outputs
            assert {e["layer"] for e in rev["savedByLayer"]} == \
                {e["layer"] for e in bptt["savedByLayer"] if "/" not in e["layer"]} | {stage.path for stage in stages}
            assert rev["savedBytes"] < (0.45 if profile == "revsresnet21" else 0.65) * bptt["savedBytes"]
            assert rev["liveAtStartBytes"] == bptt["liveAtStartBytes"]
            assert output.read(os.path.join(FIXTURES, f"{profile}-revsnn-T{t}-B{b}.json"))["allocations"] is None
