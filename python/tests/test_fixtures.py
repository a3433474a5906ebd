"""The committed fixtures (Tests/PlannerTests/Fixtures/pytorch/) are whole, current and consistent."""

import glob
import hashlib
import os

import pytest
from conftest import EXPRESSIBLE, ROOT

from snnmem_torch import output

FOLDER = os.path.join(ROOT, "Tests", "PlannerTests", "Fixtures", "pytorch")
FILES = sorted(glob.glob(os.path.join(FOLDER, "*.json")))


@pytest.mark.skipif(not FILES, reason="no fixtures yet: bash scripts/pytorch-fixtures.sh")
def test_every_expressible_profile_has_two_points_per_strategy():
    seen = {}
    for path in FILES:
        m = output.read(path)
        seen.setdefault((m["profile"], m["strategy"]), set()).add((m["timesteps"], m["batch"]))
    for name in EXPRESSIBLE:
        for strategy in ("bptt", "sltt", "checkpoint"):
            assert len(seen.get((name, strategy), ())) >= 2, f"{name} {strategy}: {seen.get((name, strategy))}"


@pytest.mark.parametrize("path", FILES, ids=[os.path.basename(p) for p in FILES])
def test_fixture_is_current_and_consistent(path):
    m = output.read(path)
    name = os.path.basename(path)
    assert name == f"{m['profile']}-{m['strategy']}-T{m['timesteps']}-B{m['batch']}.json"
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
