"""`branches` blocks (add of several paths, concat along channels, SEW's AND and IAND) on the PyTorch side:
the loader's errors equal the Swift ones, the builder's network measured by PyTorch against the pytorch-cpu
plan, profile -> network -> export -> the same profile, and what the exporter reads and refuses."""

import json
import os
import subprocess

import pytest
import torch
import torch.nn as nn
from conftest import ROOT, assert_loader_fails_as_snnmem
from test_export import SNNMEM, Concat, ThreeConsumers, figures, lif, needs_snnmem, plan, saved_by_hooks, structure

from snnmem_torch import profile as P
from snnmem_torch.build import build
from snnmem_torch.errors import ProfileError
from snnmem_torch.export import ExportError, export_profile

from spikingjelly.activation_based import functional, layer  # noqa: E402  (after torch)

JOINS = os.path.join(ROOT, "python", "tests", "profiles", "branches-joins.yaml")
BAD = os.path.join(ROOT, "Tests", "ProfilesTests", "BadProfiles")


def test_joins_profile_loads_every_join():
    profile = P.load(JOINS)
    blocks = {layer.path: layer for layer in profile.all_layers if layer.kind == "branches"}
    assert {path: block.join for path, block in blocks.items()} == {
        "fan": "add", "dense": "concat", "sew_iand": "iand", "sew_and": "and", "sew_and/path1/inner": "add"}
    assert [len(p) for p in blocks["fan"].paths] == [2, 0, 2]
    assert blocks["dense"].output_shape == (48, 32, 32)


@pytest.mark.skipif(SNNMEM is None, reason="the Swift snnmem binary is not built")
@pytest.mark.parametrize("name", sorted(f for f in os.listdir(BAD) if f.startswith(("branches-", "convtranspose-"))))
def test_loader_errors_equal_snnmem(name):
    path = os.path.join(BAD, name)
    assert_loader_fails_as_snnmem(path)


@needs_snnmem
@pytest.mark.parametrize("strategy", ["bptt", "sltt", "checkpoint"])
def test_builder_network_saves_and_peaks_as_planned(strategy):
    """The builder's `Branches` modules measured by PyTorch: saved bytes equal per layer (bptt), step peak
    within 1% (the rest is the conv table's oneDNN scratch on this shape, not the joins)."""
    from snnmem_torch.measure import measure
    planned = plan(JOINS, "--strategy", strategy)["strategies"][0]
    measured = measure(JOINS, strategy, stream=False)
    if strategy == "bptt":
        assert {e["layer"]: e["bytes"] for e in measured["savedByLayer"] if e["bytes"]} == \
            {e["layer"]: e["bytes"] for e in planned["savedByLayer"] if e["bytes"]}
        # The products keep what autograd keeps: IAND the rsub's (1 - a) (b is its conv's input already),
        # AND both operands; the sums and the concatenation keep nothing.
        saved = {e["layer"]: e["bytes"] for e in measured["savedByLayer"]}
        assert saved.get("sew_iand") == 2 * 2 * 48 * 32 * 32 * 4
        assert saved.get("sew_and") == 2 * (2 * 2 * 32 * 16 * 16 * 4)
        assert not saved.get("fan") and not saved.get("dense")
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


@needs_snnmem
def test_joins_profile_round_trips_through_the_exporter(tmp_path):
    original = P.load(JOINS)
    out = str(tmp_path / "joins.yaml")
    export_profile(build(original), original.input_shape, timesteps=original.timesteps, batch=original.batch,
                   optimizer=original.optimizer, name=original.name, output=out)
    exported = P.load(out)
    assert structure(exported.layers) == structure(original.layers)
    assert [b.join for b in exported.all_layers if b.kind == "branches"] == \
        [b.join for b in original.all_layers if b.kind == "branches"]
    assert figures(plan(out)) == figures(plan(JOINS))


@needs_snnmem
@pytest.mark.parametrize("model,joins", [(Concat, ["concat"]), (ThreeConsumers, ["add"])])
def test_hand_written_forks_export_as_branches(model, joins, tmp_path):
    net, out = model(), str(tmp_path / "model.yaml")
    export_profile(net, (3, 4, 4), timesteps=3, batch=2, output=out)
    loaded = P.load(out)
    assert [b.join for b in loaded.all_layers if b.kind == "branches"] == joins
    planned = plan(out, "--strategy", "bptt")["strategies"][0]["savedTensorBytes"]
    assert saved_by_hooks(net, 3, 2, (3, 4, 4), loaded.classes) == planned


class NotSeriesParallel(nn.Module):
    """x feeds a and the final cat; a's output feeds b and the same cat: two forks meeting in one join."""

    def __init__(self):
        super().__init__()
        self.a, self.b = layer.Conv2d(3, 3, 1), layer.Conv2d(3, 3, 1)
        self.flat, self.fc = layer.Flatten(), layer.Linear(9 * 16, 3)

    def forward(self, x):
        y = self.a(x)
        return self.fc(self.flat(torch.cat([x, y, self.b(y)], dim=2)))


class CatWidth(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.flat, self.fc = layer.Conv2d(3, 3, 1), layer.Flatten(), layer.Linear(3 * 4 * 8, 3)

    def forward(self, x):
        return self.fc(self.flat(torch.cat([x, self.a(x)], dim=4)))


class SewOr(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.sn = layer.Conv2d(3, 3, 1), lif()
        self.flat, self.fc = layer.Flatten(), layer.Linear(48, 3)

    def forward(self, x):
        y = self.sn(self.a(x))
        return self.fc(self.flat(x + y - x * y))


class IandOutOfOrder(nn.Module):
    """(1 - a) * b with b's path computed before a's: the profile runs a's path first."""

    def __init__(self):
        super().__init__()
        self.a, self.sa, self.b, self.sb = layer.Conv2d(3, 3, 1), lif(), layer.Conv2d(3, 3, 1), lif()
        self.flat, self.fc = layer.Flatten(), layer.Linear(48, 3)

    def forward(self, x):
        b = self.sb(self.b(x))
        a = self.sa(self.a(x))
        return self.fc(self.flat(b * (1.0 - a)))


@pytest.mark.parametrize("model,where,why", [
    (NotSeriesParallel(), r"module 'a' \(.*Conv2d\)", "meet in 'cat', outside the block this fork is in: the graph is "
     "not series-parallel"),
    (CatWidth(), r"module 'cat' \(cat\)", "along dimension 4 .* a profile's concat joins channels"),
    (SewOr(), r"module 'sub' \(sub\)", "joins paths from 'x' with sub; the profile language joins paths by add, concat"),
    (IandOutOfOrder(), r"module 'mul' \(mul\)", "runs the paths from 'x' in another order than its iand join reads"),
])
def test_graphs_the_language_cannot_say_are_refused(model, where, why):
    with pytest.raises(ExportError, match=where + ".*" + why) as info:
        export_profile(model, (3, 4, 4), timesteps=2, batch=2)
    assert "fix:" in str(info.value)


def test_joins_on_cuda_keep_what_the_pytorch_layout_declares():
    """The builder's join expressions (branches.py's `Branches.forward`) on fake CUDA tensors (cuda_meta.py):
    the layout the planner uses for pytorch-cuda, a and b standing for the two paths' outputs."""
    from snnmem_torch import cuda_meta as cm

    T, B, C, H, W = 2, 2, 4, 8, 8
    seq = T * B * C * H * W * 4

    def join(kind):
        a, b = (torch.empty(T, B, C, H, W, requires_grad=True) for _ in range(2))
        if kind == "concat":
            return cm.trace(lambda: torch.cat([a, b], dim=-3), {"a": a, "b": b})
        if kind == "add":
            return cm.trace(lambda: a + b, {"a": a, "b": b})
        fn = (lambda: b * a) if kind == "and" else (lambda: b * (1.0 - a))
        return cm.trace(fn, {"a": a, "b": b})

    with cm.fake_cuda():
        traces = {kind: join(kind) for kind in ("add", "concat", "and", "iand")}
    assert traces["add"].saved == [] and traces["concat"].saved == []
    # concat's backward hands out views of the gradient: it allocates nothing.
    assert traces["concat"].backward == []
    assert sorted(s.origin for s in traces["and"].saved) == ["input:a", "input:b"]
    assert sorted(s.origin for s in traces["iand"].saved) == ["input:b", "new:aten.rsub"]
    assert [a.nbytes for a in traces["iand"].forward] == [seq, seq]  # 1 - a, then the product
    # MulBackward0: two gradients; RsubBackward1: one negation.
    assert [a.nbytes for a in traces["iand"].backward] == [seq, seq, seq]
    assert [a.nbytes for a in traces["and"].backward] == [seq, seq]


# ----------------------------------------------------------------------------------------------
# convtranspose (a U-Net's learnt upsampling)

UP = """
name: up
input: {channels: 3, height: 8, width: 8}
timesteps: 2
batch: 2
layers:
  - conv: {name: enc, out: 8, kernel: 3, padding: 1}
  - neuron: {name: enc_sn}
  - branches:
      name: skip
      join: concat
      paths:
        - []
        - [{maxpool: {name: down, kernel: 2}}, {conv: {name: mid, out: 16, kernel: 3, padding: 1}}, {neuron: {name: mid_sn}},
           {convtranspose: {name: up, out: 8, kernel: 2, stride: 2}}]
  - convtranspose: {name: same, out: 4, kernel: 3, padding: 1, bias: true}
  - globalavgpool
  - flatten
  - linear: {name: fc, out: 5}
"""


def test_convtranspose_loads_builds_and_round_trips(tmp_path, write_profile):
    path = write_profile(UP, "up.yaml")
    profile = P.load(path)
    up = next(layer for layer in profile.all_layers if layer.name == "up")
    assert up.output_shape == (8, 8, 8) and up.params["stride"] == 2
    net = build(profile)
    assert tuple(net.layers["skip/path1/up"].weight.shape) == (16, 8, 2, 2)
    with torch.no_grad():
        assert net(torch.rand(2, 2, 3, 8, 8)).shape == (2, 2, 5)
    functional.reset_net(net)
    out = str(tmp_path / "up-exported.yaml")
    export_profile(net, profile.input_shape, timesteps=2, batch=2, optimizer=profile.optimizer, output=out)
    assert structure(P.load(out).layers) == structure(profile.layers)
    if SNNMEM:
        cpu = subprocess.run([SNNMEM, "plan", out, "--runtime", "pytorch-cpu", "--format", "json"], capture_output=True,
                             text=True)
        reasons = {entry["reason"] for entry in json.loads(cpu.stdout)["notApplicable"] if entry["strategy"] == "bptt"}
        assert len(reasons) == 1 and "16 -> 8 channels" in (reason := reasons.pop()) and "not modelled in the pytorch-cpu" in reason
        cuda = subprocess.run([SNNMEM, "plan", out, "--runtime", "pytorch-cuda", "--format", "json"], capture_output=True,
                              text=True)
        assert cuda.returncode == 0, cuda.stderr


def test_convtranspose_refusals(write_profile):
    with pytest.raises(ProfileError, match="padding 2 is not smaller than the kernel 2"):
        P.parse(UP.replace("kernel: 2, stride: 2}", "kernel: 2, stride: 2, padding: 2}"), "up.yaml")
    model = nn.Sequential(layer.ConvTranspose2d(3, 4, 3, stride=2, output_padding=1), layer.Flatten(),
                          layer.Linear(4 * 10 * 10, 3))
    with pytest.raises(ExportError, match=r"module '0' .*output_padding"):
        export_profile(model, (3, 4, 4), timesteps=2, batch=2)


def test_convtranspose_on_cuda_keeps_input_and_weight():
    """The pytorch-cuda layout (PyTorchLayerTable): cuDNN's transposed conv saves its input and weight, allocates
    its output forward and the input and weight gradients backward (fake CUDA tensors, cuda_meta.py)."""
    from snnmem_torch import cuda_meta as cm

    with cm.fake_cuda():
        up = layer.ConvTranspose2d(8, 4, 2, stride=2, bias=False, step_mode="m")
        x = torch.empty(2, 2, 8, 4, 4, requires_grad=True)
        tr = cm.trace(lambda: up(x), {"x_seq": x}, {"up": up})
    assert sorted(s.origin.split(":")[0] for s in tr.saved) == ["input", "parameter"]
    assert tr.saved_new_bytes() == 0
    assert [a.nbytes for a in tr.forward] == [2 * 2 * 4 * 8 * 8 * 4]
    assert sorted(a.nbytes for a in tr.backward) == sorted([2 * 2 * 8 * 4 * 4 * 4, 8 * 4 * 2 * 2 * 4])
