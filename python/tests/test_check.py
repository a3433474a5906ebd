"""`snnmem-torch check`: export a module, plan it with the Swift CLI and measure the module itself.

Needs the Swift CLI ($SNNMEM_BIN or .build/release/snnmem); the checks that plan are skipped, saying so,
where none is built."""

import json
import os

import pytest
import torch.nn as nn
from conftest import ROOT

from snnmem_torch.check import check_model, compare, layer_modules
from snnmem_torch.cli import main
from snnmem_torch.errors import UsageError
from snnmem_torch.export import export_profile
from snnmem_torch import profile as P

from spikingjelly.activation_based import layer, neuron, surrogate  # noqa: E402  (after torch)


def _binary():
    candidates = [os.environ.get("SNNMEM_BIN"), os.path.join(ROOT, ".build", "release", "snnmem")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


SNNMEM = _binary()
needs_snnmem = pytest.mark.skipif(SNNMEM is None, reason="the Swift CLI is not built (swift build -c release "
                                  "--product snnmem, or set SNNMEM_BIN)")


def lif():
    return neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True, step_mode="m")


class Block(nn.Module):
    """A spiking residual block whose add is a function in forward (no module of its own)."""

    def __init__(self, channels):
        super().__init__()
        self.conv = layer.Conv2d(channels, channels, 3, padding=1, bias=False, step_mode="m")
        self.bn = layer.BatchNorm2d(channels, step_mode="m")
        self.sn = lif()

    def forward(self, x):
        return self.sn(self.bn(self.conv(x))) + x


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(layer.Conv2d(3, 32, 3, padding=1, bias=False, step_mode="m"),
                                  layer.BatchNorm2d(32, step_mode="m"), lif())
        self.block = Block(32)
        self.pool = layer.MaxPool2d(2, step_mode="m")
        self.flat = layer.Flatten(step_mode="m")
        self.fc = layer.Linear(32 * 4 * 4, 10, step_mode="m")

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.block(self.stem(x)))))


def make_tiny():
    return TinyNet()


@needs_snnmem
@pytest.mark.parametrize("strategy", ["bptt", "sltt", "checkpoint"])
def test_the_model_itself_measures_what_its_export_plans(strategy, tmp_path):
    out = str(tmp_path / "tiny.yaml")
    result = check_model(TinyNet(), (3, 8, 8), timesteps=3, batch=2, strategy=strategy, profile_out=out,
                         binary=SNNMEM)
    assert result.agrees, [(r.layer, r.predicted_bytes, r.measured_bytes) for r in result.rows]
    # Every layer that keeps something is compared, the neurons and the block's layers among them.
    layers = {r.layer for r in result.rows}
    assert {"stem.2", "block/main/sn"} <= layers, layers
    if strategy == "bptt":
        assert {"stem.1", "block/main/conv", "block/main/bn", "pool", "fc"} <= layers, layers
    assert result.measured_saved_bytes == result.predicted_saved_bytes > 0
    assert abs(result.peak_error_percent) <= 1.0
    assert os.path.exists(out)  # -o keeps the export
    if strategy == "sltt":
        assert result.measurement["savedTimestep"] is not None


def test_layers_map_back_to_the_models_own_modules():
    model, entries = TinyNet(), []
    text = export_profile(model, (3, 8, 8), timesteps=2, batch=2, entries_out=entries)
    profile = P.parse(text, "tiny.yaml")
    modules, kinds = layer_modules(model, entries, profile.layers)
    assert modules["stem.0"] is model.stem[0]
    assert modules["block/main/conv"] is model.block.conv
    assert kinds["block/main/sn"] == "neuron" and modules["block/main/sn"] is model.block.sn
    # The residual add is a function: its block maps to the Block module, the add to nothing of its own.
    assert modules["block"] is model.block


def _planned(tensors):
    return {"savedTensors": tensors, "peakBytes": 1000}


def _measured(by_layer, peak, timestep=None):
    return {"savedByLayer": [{"layer": k, "bytes": v} for k, v in by_layer.items()], "savedBytes": sum(by_layer.values()),
            "stepPeakBytes": peak, "savedTimestep": timestep}


def test_a_layer_off_by_one_byte_or_a_peak_off_by_more_than_the_tolerance_disagrees():
    planned = _planned([{"layer": "conv", "keptBy": "bn", "bytes": 64, "phase": "forward t=0", "timestep": 0},
                        {"layer": "bn", "keptBy": "sn", "bytes": 32, "phase": "forward t=0", "timestep": 0}])
    assert compare("p", "pytorch-cpu", "bptt", planned, _measured({"bn": 64, "sn": 32}, 1005), 1.0).agrees
    off = compare("p", "pytorch-cpu", "bptt", planned, _measured({"bn": 64, "sn": 33}, 1000), 1.0)
    assert not off.agrees and [r.layer for r in off.rows if not r.agrees] == ["sn"]
    assert not compare("p", "pytorch-cpu", "bptt", planned, _measured({"bn": 64, "sn": 32}, 1011), 1.0).agrees
    # A layer only the measurement has is a disagreement too.
    assert not compare("p", "pytorch-cpu", "bptt", planned, _measured({"bn": 64, "sn": 32, "fc": 4}, 1000), 1.0).agrees


def test_recomputation_and_other_timesteps_are_not_what_the_hooks_see():
    planned = _planned([{"layer": "c", "keptBy": "c", "bytes": 10, "phase": "forward t=0", "timestep": 0},
                        {"layer": "c", "keptBy": "c", "bytes": 10, "phase": "recompute t=0", "timestep": 0},
                        {"layer": "c", "keptBy": "c", "bytes": 7, "phase": "forward t=1", "timestep": 1}])
    assert compare("p", "pytorch-cpu", "checkpoint", planned, _measured({"c": 17}, 1000), 1.0).agrees
    assert compare("p", "pytorch-cpu", "sltt", planned, _measured({"c": 7}, 1000, timestep=1), 1.0).agrees


def _factory(tmp_path) -> str:
    source = tmp_path / "tinynet.py"
    source.write_text("import sys\nsys.path.insert(0, %r)\nfrom test_check import make_tiny\n" % os.path.dirname(__file__))
    return f"{source}:make_tiny"


@needs_snnmem
def test_cli_prints_predicted_against_measured_and_exits_0(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SNNMEM_BIN", SNNMEM)
    code = main(["check", _factory(tmp_path), "--input", "3x8x8", "--timesteps", "2", "--batch", "2", "--json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["agrees"] is True
    assert document["document"] == "snnmem-torch.check" and document["runtime"] == "pytorch-cpu"
    assert document["predictedSavedBytes"] == document["measuredSavedBytes"] == \
        sum(e["measuredBytes"] for e in document["savedByLayer"])


def test_cli_without_the_snnmem_cli_exits_2_and_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SNNMEM_BIN", str(tmp_path / "missing-snnmem"))
    code = main(["check", _factory(tmp_path), "--input", "3x8x8", "--timesteps", "2", "--batch", "2"])
    assert code == 2
    assert "SNNMEM_BIN" in capsys.readouterr().err


class Softmaxed(nn.Module):
    def __init__(self):
        super().__init__()
        self.flat = layer.Flatten(step_mode="m")
        self.fc = layer.Linear(3 * 4 * 4, 10, step_mode="m")
        self.act = nn.Softmax(dim=-1)

    def forward(self, x):
        return self.act(self.fc(self.flat(x)))


def test_a_model_the_profile_language_cannot_express_exits_2_naming_the_module(tmp_path, capsys):
    source = tmp_path / "softmaxed.py"
    source.write_text("import sys\nsys.path.insert(0, %r)\nfrom test_check import Softmaxed\n" % os.path.dirname(__file__))
    code = main(["check", f"{source}:Softmaxed", "--input", "3x4x4", "--timesteps", "2", "--batch", "2"])
    assert code == 2
    assert "'act'" in capsys.readouterr().err


def test_strategies_the_model_itself_cannot_run_are_refused():
    with pytest.raises(UsageError, match="revsnn"):
        check_model(TinyNet(), (3, 8, 8), strategy="revsnn", binary="/bin/true")


@needs_snnmem
def test_sew_iand_blocks_are_measured_through_their_modules(tmp_path):
    """A `branches` join (SEW IAND): its layers map into the paths, and the model agrees with its plan."""
    from spikingjelly.activation_based.model import sew_resnet
    model = sew_resnet.sew_resnet18(cnf="IAND", spiking_neuron=neuron.LIFNode, surrogate_function=surrogate.ATan(),
                                    detach_reset=True, num_classes=10)
    result = check_model(model, (3, 32, 32), timesteps=2, batch=2, binary=SNNMEM)
    assert result.agrees, [(r.layer, r.predicted_bytes, r.measured_bytes) for r in result.rows if not r.agrees]
    layers = {r.layer for r in result.rows}
    # The block's own layers inside its path, and the IAND product ((1 - a) and b kept) on the block.
    assert {"layer1.0/path0/conv1", "layer1.0/path0/sn1", "layer1.0"} <= layers, sorted(layers)


TINY_TRANSFORMER = """
name: tiny-transformer
input: {channels: 3, height: 8, width: 8}
timesteps: 2
batch: 2
neuron: {type: lif, tau: 2.0, threshold: 1.0, reset: hard, detachReset: true, surrogate: {type: sigmoid, alpha: 4.0}}
layers:
  - conv: {name: stem, out: 32, kernel: 3, padding: 1}
  - batchnorm: {name: stem_bn}
  - neuron: {name: stem_lif}
  - tokens
  - residual: {name: attn, main: [attention: {kind: ssa, heads: 4, scale: 0.125, threshold: 0.5}]}
  - residual: {name: sdsa, main: [attention: {kind: sdsa, heads: 4, scale: 0.125, threshold: 0.5}]}
  - residual:
      name: mlp
      main:
        - conv1d: {name: fc1, out: 64}
        - batchnorm: {name: fc1_bn}
        - neuron: {name: fc1_lif}
        - conv1d: {name: fc2, out: 32}
        - batchnorm: {name: fc2_bn}
  - tokenmean
  - linear: {name: head, out: 10}
"""


@needs_snnmem
def test_attention_parts_are_measured_as_layers_of_their_own(tmp_path):
    """The measure package's SSA and SDSA modules export as `attention`; their q/k/v/projection parts map
    to the modules' attributes, so each part's saved bytes are compared on their own."""
    from snnmem_torch.build import build
    net = build(P.parse(TINY_TRANSFORMER, "tiny-transformer.yaml"))
    result = check_model(net, (3, 8, 8), timesteps=2, batch=2, binary=SNNMEM)
    assert result.agrees, [(r.layer, r.predicted_bytes, r.measured_bytes) for r in result.rows if not r.agrees]
    layers = {r.layer for r in result.rows}
    assert any(layer.endswith("/q_lif") for layer in layers) and any(layer.endswith("/talking_heads_lif") for layer in layers)


def test_a_trevsnn_network_is_sent_to_measure():
    from conftest import profile_path
    from snnmem_torch.build import build
    original = P.load(profile_path("trevsnn-cifar"))
    with pytest.raises(UsageError, match="snnmem-torch measure PROFILE --strategy trevsnn"):
        check_model(build(original), original.input_shape, timesteps=original.timesteps, batch=2, binary="/bin/true")
