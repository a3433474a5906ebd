"""The newer layers under float16/bfloat16 autocast on CUDA, checked on fake CUDA tensors (snnmem_torch/cuda_meta.py):
what autograd saves per layer, against the pytorch-cuda plan. The CPU's side is held by the committed fixtures
(Tests/PlannerTests/Fixtures/pytorch/*-float16.json, *-bfloat16.json)."""

import json
import os
import subprocess

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("spikingjelly")

from conftest import ROOT, SNNMEM  # noqa: E402

from snnmem_torch import cuda_meta as cm  # noqa: E402

FIXTURE_PROFILES = os.path.join(ROOT, "Tests", "PlannerTests", "Fixtures", "pytorch", "profiles")
HALF = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def _planned_saved(path: str, dtype: str, T: int, B: int) -> dict:
    plan = json.loads(subprocess.run([SNNMEM, "plan", path, "--runtime", "pytorch-cuda", "--strategy", "bptt", "--dtype", dtype,
                                      "--timesteps", str(T), "--batch", str(B), "--format", "json"],
                                     capture_output=True, text=True, check=True).stdout)
    return {e["layer"]: e["bytes"] for e in plan["strategies"][0]["savedByLayer"]}


@pytest.mark.skipif(not os.path.exists(SNNMEM), reason="needs the Swift CLI (swift build -c release)")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_adaptive_lif_under_autocast_keeps_half_h_and_b(dtype):
    """The adaptive LIF's autograd function has no custom_fwd: under autocast it runs in its half input's dtype
    and saves h and b in it ([T, B, ...] each), nothing else; the plan attributes the same bytes."""
    path = os.path.join(FIXTURE_PROFILES, "alif-conv.yaml")
    T, B = 2, 2
    traces = dict(cm.network_traces(path, T=T, B=B, autocast=HALF[dtype]))
    planned = _planned_saved(path, dtype, T, B)
    for name in ("alif1", "alif2"):
        alif = traces[name]
        assert alif.output[1] == HALF[dtype]
        assert sorted((s.shape, s.dtype) for s in alif.saved) == [((T, B, 16, 8, 8), HALF[dtype])] * 2
        assert planned[name] == sum(s.nbytes for s in alif.saved if s.is_new) == 2 * T * B * 16 * 8 * 8 * 2
