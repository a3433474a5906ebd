"""Sequence inputs (`input: {features, perTimestep: true}`, [T, B, features] as SHD's spike trains): the loader as
Swift reads them (shapes and errors), what PyTorch keeps for them on the CPU (measured against the plan) and on
CUDA (fake device, against the pytorch-cuda plan)."""

import json
import os
import subprocess

import pytest
from conftest import ROOT, SNNMEM, assert_loader_fails_as_snnmem, planned_and_measured_on_cpu, saved_by_layer

from snnmem_torch import profile as P

needs_snnmem = pytest.mark.skipif(not os.path.exists(SNNMEM), reason="the Swift snnmem binary is not built")

SEQUENCE = """
name: seq-tiny
input: {features: 40, perTimestep: true}
timesteps: 4
batch: 3
neuron: {type: lif, tau: 2.0, detachReset: true}
layers:
  - linear: {out: 24}
  - neuron
  - dropout: {p: 0.2}
  - linear: {out: 24}
  - neuron
  - linear: {out: 5}
"""


def test_shapes_follow_the_swift_builder(write_profile):
    prof = P.load(write_profile(SEQUENCE))
    assert prof.input_shape == (40,) and prof.input_per_timestep
    assert [(l.kind, l.input_shape, l.output_shape) for l in prof.all_layers][0] == ("linear", (40,), (24,))
    assert prof.classes == 5


@needs_snnmem
def test_layers_equal_snnmem_plan(write_profile):
    path = write_profile(SEQUENCE)
    out = subprocess.run([SNNMEM, "plan", path, "--strategy", "bptt", "--layers", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    theirs = [(l["layer"], l["kind"], l["inputShape"], l["outputShape"]) for l in json.loads(out)["layers"]]
    mine = [(l.path, l.kind, list(l.input_shape), list(l.output_shape)) for l in P.load(path).all_layers]
    assert mine == theirs


BAD = [SEQUENCE.replace("features: 40,", "features: 40, width: 3,"), SEQUENCE.replace("features: 40", "features: 0"),
       SEQUENCE.replace("features: 40", "features: many"), SEQUENCE.replace("  - linear: {out: 24}\n  - neuron\n  - dropout",
                                                                         "  - conv: {out: 4, kernel: 3}\n  - neuron\n  - dropout"),
       "input: {features: 7, perTimestep: true}\ntimesteps: 2\nbatch: 2\nlayers:\n  - linear: {out: 3}\n  - trevsnn: {}\n"]


@needs_snnmem
@pytest.mark.parametrize("index", range(len(BAD)))
def test_error_messages_equal_snnmem(index, write_profile):
    path = write_profile(BAD[index], "bad.yaml")
    assert_loader_fails_as_snnmem(path)


@needs_snnmem
def test_bad_profile_file_fails_as_in_swift():
    path = os.path.join(ROOT, "Tests", "ProfilesTests", "BadProfiles", "input-features-and-channels.yaml")
    assert_loader_fails_as_snnmem(path)


@needs_snnmem
@pytest.mark.parametrize("per_timestep", [True, False])
@pytest.mark.parametrize("strategy", ["bptt", "sltt", "checkpoint"])
def test_measured_saved_bytes_and_peak_equal_the_plan(strategy, per_timestep, write_profile):
    path = write_profile(SEQUENCE if per_timestep else SEQUENCE.replace(", perTimestep: true", ""))
    planned, measured = planned_and_measured_on_cpu(path, strategy)
    if strategy == "bptt":
        assert saved_by_layer(measured) == \
            saved_by_layer(planned)
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


@needs_snnmem
def test_cuda_plan_saves_what_fake_cuda_autograd_saves(write_profile):
    from snnmem_torch import cuda_meta as cm
    path = write_profile(SEQUENCE)
    plan = json.loads(subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", "pytorch-cuda", "--strategy",
                                      "bptt", "--timesteps", "2", "--batch", "2"], capture_output=True, text=True,
                                     check=True).stdout)["strategies"][0]
    planned = {e["layer"]: e["bytes"] for e in plan["savedByLayer"]}
    layers = {layer.path for layer in P.load(path).all_layers}
    checked = 0
    for name, trace in cm.network_traces(path, T=2, B=2):
        if name in layers:
            # The first linear keeps the [T, B, features] batch itself, which the plan counts as the input.
            kept = sum(s.nbytes for s in trace.saved if s.origin.startswith("input")) if name != "linear0" else 0
            assert trace.saved_new_bytes() + kept == planned.get(name, 0), name
            checked += 1
    assert checked == 6
