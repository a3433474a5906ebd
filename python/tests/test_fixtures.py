"""The committed fixtures (Tests/PlannerTests/Fixtures/pytorch/) are whole, current and consistent."""

import glob
import hashlib
import os

import pytest
from conftest import EXPRESSIBLE, ROOT, TRANSFORMER

from snnmem_torch import output

FOLDER = os.path.join(ROOT, "Tests", "PlannerTests", "Fixtures", "pytorch")
FILES = sorted(glob.glob(os.path.join(FOLDER, "*.json")))


@pytest.mark.skipif(not FILES, reason="no fixtures yet: bash scripts/pytorch-fixtures.sh")
def test_every_expressible_profile_has_two_points_per_strategy():
    seen = {}
    for path in FILES:
        m = output.read(path)
        if m["dtype"] == "float32":
            seen.setdefault((m["profile"], m["strategy"]), set()).add((m["timesteps"], m["batch"]))
    for name in EXPRESSIBLE + TRANSFORMER:
        for strategy in ("bptt", "sltt", "checkpoint"):
            assert len(seen.get((name, strategy), ())) >= 2, f"{name} {strategy}: {seen.get((name, strategy))}"


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p) for p in FILES])
def test_fixture_is_current_and_consistent(path):
    m = output.read(path)
    name = os.path.basename(path)
    suffix = "" if m["dtype"] == "float32" else f"-{m['dtype']}"
    assert name == f"{m['profile']}-{m['strategy']}-T{m['timesteps']}-B{m['batch']}{suffix}.json"
    with open(os.path.join(ROOT, m["profileFile"]), "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == m["profileSHA256"], \
            f"{m['profileFile']} changed since {name} was written: bash scripts/pytorch-fixtures.sh"
    assert m["savedBytes"] == sum(e["bytes"] for e in m["savedByLayer"])
    assert m["stepPeakBytes"] == m["liveAtStartBytes"] + m["peak"]["runningBytes"]
    assert m["streamSumBytes"] == m["liveAtEndBytes"] - m["liveAtStartBytes"]
    assert "warning" not in m
    assert os.path.getsize(path) <= 300_000
    if m["strategy"] == "checkpoint":
        assert m["verification"]["maxAbsGradDiff"] < 1e-5
    if m["strategy"] == "trevsnn":
        # T-RevSNN's function against bptt on the same weights; its rebuilt states against the forward's.
        assert m["verification"]["maxRelGradDiff"] < 1e-4
        assert m["verification"]["maxRelReconstructionError"] < 1e-5


MIXED = [p for p in FILES if not os.path.basename(p).endswith(("-T1-B1.json", "-T2-B2.json", "-T4-B4.json"))]
MIXED_PROFILES = ["cifarnet", "vgg11"]


@pytest.mark.skipif(not MIXED, reason="no mixed-precision fixtures yet: bash scripts/pytorch-fixtures.sh cifarnet vgg11")
def test_mixed_precision_fixtures():
    """cifarnet and vgg11 under autocast (bfloat16; float16 with a GradScaler) at both points, every
    strategy: a float32 model (its parameters as in the float32 fixture), the stream kept at T=2, B=2."""
    by_key = {}
    for path in FILES:
        m = output.read(path)
        by_key[(m["profile"], m["strategy"], m["timesteps"], m["batch"], m["dtype"])] = (path, m)
    for profile in MIXED_PROFILES:
        for dtype in ("bfloat16", "float16"):
            for strategy in ("bptt", "sltt", "checkpoint"):
                for t, b in ((2, 2), (4, 4)):
                    path, m = by_key[(profile, strategy, t, b, dtype)]
                    name = os.path.basename(path)
                    assert m["autocast"]["dtype"] == dtype and m["autocast"]["parameters"] == "float32", name
                    _, reference = by_key[(profile, strategy, t, b, "float32")]
                    assert m["liveAtStart"]["parameters"] == reference["liveAtStart"]["parameters"], name
                    assert m["liveAtStart"]["optimizerState"] == reference["liveAtStart"]["optimizerState"], name
                    # activations in half precision: what is kept, less autocast's weight copies, shrinks
                    copies = sum(t["bytes"] for e in m["savedByLayer"] for t in e["tensors"] if t.get("castOf"))
                    assert (copies > 0) == (strategy != "checkpoint"), name  # checkpoint keeps only segment inputs
                    assert m["savedBytes"] - copies < reference["savedBytes"], name
                    if dtype == "float16":
                        assert m["gradScaler"]["measuredStepTaken"] and m["liveAtStart"]["gradScaler"] == 8, name
                    else:
                        assert m["gradScaler"] is None, name
                    if strategy == "checkpoint":
                        assert m["autocast"]["recomputeAutocast"] == [dtype] * -(-t // m["segment"]), name
                    if (t, b) == (2, 2) and profile == "cifarnet":
                        assert m["allocations"], f"{name}: the T=2, B=2 fixtures keep the stream"
