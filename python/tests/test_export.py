"""`export_profile` / `snnmem-torch export`: round trips through the builder and the planner, hand-written
SpikingJelly modules, SpikingJelly's model zoo, and the constructs the profile language cannot express.

The planner checks need the Swift CLI: $SNNMEM_BIN, else .build/release/snnmem or .build-export/release/snnmem
under the repository root; they are skipped, saying so, where none is built."""

import json
import os
import subprocess

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from conftest import EXPRESSIBLE, REVERSIBLE, ROOT, SEQUENCE, TRANSFORMER, TREV, profile_path

from snnmem_torch import profile as P
from snnmem_torch.build import build
from snnmem_torch.cli import main
from snnmem_torch.export import ExportError, export_profile

from spikingjelly.activation_based import functional, layer, neuron, surrogate  # noqa: E402  (after torch)


def _binary():
    candidates = [os.environ.get("SNNMEM_BIN"), os.path.join(ROOT, ".build", "release", "snnmem"),
                  os.path.join(ROOT, ".build-export", "release", "snnmem")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


SNNMEM = _binary()
needs_snnmem = pytest.mark.skipif(SNNMEM is None, reason="the Swift CLI is not built (swift build -c release --product "
                                  "snnmem, or set SNNMEM_BIN): the exported profiles are not planned")


def plan(path: str, *options: str) -> dict:
    run = subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", "pytorch-cpu", *options],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def figures(document: dict) -> dict:
    return {s["strategy"]: (s["peakBytes"], s["savedTensorBytes"]) for s in document["strategies"]}


def structure(layers: list) -> list:
    """Kinds, shapes and settings of a profile's layers, names aside."""
    out = []
    for layer in layers:
        neuron_spec = None
        if layer.neuron is not None:
            n = layer.neuron
            neuron_spec = (n.type, n.tau if n.type == "lif" else None, n.threshold, n.reset,
                           n.v_reset if n.reset == "hard" else None, n.detach_reset, n.surrogate, n.surrogate_alpha)
        out.append((layer.kind, tuple(layer.input_shape), tuple(layer.output_shape),
                    tuple(sorted(layer.params.items())), neuron_spec, structure(layer.main), structure(layer.shortcut),
                    [(structure(b.f), structure(b.g)) for b in layer.blocks], layer.join,
                    [structure(p) for p in layer.paths]))
    return out


@pytest.fixture(scope="module")
def export_bundled(tmp_path_factory):
    """Exports a bundled profile's built network once for the tests of this module: (original, path)."""
    folder, done = tmp_path_factory.mktemp("exported"), {}

    def export(name: str) -> tuple:
        if name not in done:
            original = P.load(profile_path(name))
            out = str(folder / f"{name}.yaml")
            export_profile(build(original), original.input_shape, timesteps=original.timesteps, batch=original.batch,
                           optimizer=original.optimizer, dtype=original.dtype, name=original.name, output=out,
                           input_per_timestep=original.input_per_timestep)
            done[name] = (original, out)
        return done[name]
    return export


# ----------------------------------------------------------------------------------------------
# (a) bundled profiles: profile -> builder's network -> export -> the same network, the same plan


@pytest.mark.parametrize("name", EXPRESSIBLE + REVERSIBLE + TRANSFORMER + TREV + SEQUENCE)
def test_bundled_profile_exports_the_same_network(name, export_bundled):
    original, out = export_bundled(name)
    exported = P.load(out)
    assert structure(exported.layers) == structure(original.layers)
    assert (exported.input_shape, exported.input_per_timestep, exported.timesteps, exported.batch, exported.optimizer) == \
        (original.input_shape, original.input_per_timestep, original.timesteps, original.batch, original.optimizer)


@needs_snnmem
@pytest.mark.parametrize("name", EXPRESSIBLE + REVERSIBLE + TRANSFORMER + TREV + SEQUENCE)
def test_bundled_profile_round_trip_plans_the_same_bytes(name, export_bundled):
    _, out = export_bundled(name)
    for runtime in ("pytorch-cpu", "pytorch-cuda", "snnmem"):
        def planned(path):
            run = subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", runtime], capture_output=True,
                                 text=True)
            assert run.returncode == 0, run.stderr
            return figures(json.loads(run.stdout))
        assert planned(out) == planned(profile_path(name)), runtime  # peak and saved bytes of every strategy


def test_trevsnn_network_outside_the_builders_is_refused_by_name():
    """The builder's T-RevSNN network exports (read module by module); columns in another container do not."""
    original = P.load(profile_path("trevsnn-cifar"))
    wrapped = nn.Sequential(build(original))
    with pytest.raises(ExportError, match=r"module '0.body.2' \(snnmem_torch.trevsnn.TRevNet\).*T-RevSNN"):
        export_profile(wrapped, original.input_shape, timesteps=original.timesteps, batch=original.batch)


def test_trained_trevsnn_alphas_that_differ_are_refused():
    original = P.load(profile_path("trevsnn-cifar"))
    net = build(original)
    with torch.no_grad():
        net.body[-1].columns[1].alphas[0][3] = 0.25
    with pytest.raises(ExportError, match="alphas differ"):
        export_profile(net, original.input_shape, timesteps=original.timesteps, batch=original.batch)
    with pytest.raises(ExportError, match="4 columns, one per timestep, but T = 2"):
        export_profile(build(original), original.input_shape, timesteps=2, batch=original.batch)


# ----------------------------------------------------------------------------------------------
# (b) hand-written SpikingJelly modules


def lif(**kw):
    return neuron.LIFNode(tau=2.0, surrogate_function=surrogate.ATan(), detach_reset=True, **kw)


class SmallVGG(nn.Module):
    """Conv/BN/LIF blocks with max and average pooling, the second block in a SeqToANNContainer, plain
    nn modules inside it, a global pool, flatten and a classifier; the readout averages over time."""

    def __init__(self):
        super().__init__()
        self.block1 = nn.Sequential(layer.Conv2d(3, 8, 3, padding=1, bias=False), layer.BatchNorm2d(8), lif(),
                                    layer.MaxPool2d(2))
        self.block2 = layer.SeqToANNContainer(nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16))
        self.sn2 = neuron.IFNode(v_reset=None, surrogate_function=surrogate.Sigmoid(alpha=4.0))
        self.pool = layer.AvgPool2d(2, stride=2)
        self.gap = layer.AdaptiveAvgPool2d((1, 1))
        self.flat = layer.Flatten()
        self.fc = layer.Linear(16, 10)
        self.skip = nn.Identity()

    def forward(self, x):
        x = self.block1(x)
        x = self.sn2(self.block2(x))
        x = self.skip(self.pool(x))
        return self.fc(self.flat(self.gap(x))).mean(0)


class BasicBlock(nn.Module):
    """A spiking ResNet block (neuron after the add) or, with sew=True, a SEW ADD block (neuron inside)."""

    def __init__(self, cin, cout, stride=1, sew=False):
        super().__init__()
        self.conv1 = layer.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = layer.BatchNorm2d(cout)
        self.sn1 = lif()
        self.conv2 = layer.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = layer.BatchNorm2d(cout)
        self.sew = sew
        self.sn2 = lif()
        self.down = None
        if stride != 1 or cin != cout:
            self.down = layer.SeqToANNContainer(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x)))))
        if self.sew:
            out = self.sn2(out)
        identity = self.down(x) if self.down is not None else x
        out = out + identity
        return out if self.sew else self.sn2(out)


class ResNetTiny(nn.Module):
    def __init__(self, sew=False):
        super().__init__()
        self.stem = nn.Sequential(layer.Conv2d(3, 8, 3, padding=1, bias=False), layer.BatchNorm2d(8), lif())
        self.layer1 = nn.Sequential(BasicBlock(8, 8, sew=sew), BasicBlock(8, 16, stride=2, sew=sew))
        self.gap = layer.AdaptiveAvgPool2d(1)
        self.fc = layer.Linear(16, 5)

    def forward(self, x):
        x = self.gap(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(x, 2))


def test_small_vgg_exports_every_setting(tmp_path):
    out = str(tmp_path / "vgg.yaml")
    text = export_profile(SmallVGG(), torch.zeros(2, 4, 3, 16, 16), timesteps=4, batch=8, name="small-vgg", output=out)
    assert "input: {channels: 3, height: 16, width: 16}" in text
    assert "  - conv: {name: block1.0, out: 8, kernel: 3, padding: 1}" in text
    assert "  - conv: {name: block2.0, out: 16, kernel: 3, padding: 1, bias: true}" in text
    assert "  - batchnorm: {name: block2.1}" in text
    # Only what differs from the profile's neuron (the most common one: LIF, tau 2, atan, detach_reset).
    assert ("  - neuron: {name: sn2, type: if, reset: soft, detachReset: false, surrogate: {type: sigmoid, alpha: 4.0}}"
            in text)
    assert "  - maxpool: {name: block1.3, kernel: 2}" in text
    assert "  - avgpool: {name: pool, kernel: 2}" in text
    assert "  - globalavgpool: {name: gap}" in text
    assert "skip" not in text  # nn.Identity is no layer
    loaded = P.load(out)
    assert [layer.kind for layer in loaded.layers] == ["conv", "batchnorm", "neuron", "maxpool", "conv", "batchnorm",
                                                       "neuron", "avgpool", "globalavgpool", "flatten", "linear"]
    assert loaded.neuron.detach_reset and loaded.neuron.type == "lif" and loaded.classes == 10
    if SNNMEM:
        assert set(figures(plan(out))) == {"bptt", "checkpoint", "sltt"}


class AdaptivePool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = layer.Conv2d(3, 4, 3, padding=1)
        self.sn = lif()
        self.pool = layer.AdaptiveAvgPool2d((2, 2))
        self.flat = layer.Flatten()
        self.fc = layer.Linear(16, 3)

    def forward(self, x):
        return self.fc(self.flat(self.pool(self.sn(self.conv(x)))))


def test_timesteps_batch_and_dtype_come_from_the_example_unless_given():
    text = export_profile(AdaptivePool(), torch.zeros(3, 5, 3, 4, 4, dtype=torch.bfloat16))
    assert "timesteps: 3\nbatch: 5\ndtype: bfloat16\n" in text
    text = export_profile(AdaptivePool(), torch.zeros(5, 3, 4, 4), timesteps=2, dtype="float16")
    assert "timesteps: 2\nbatch: 5\ndtype: float16\n" in text
    assert "timesteps: 4\nbatch: 16\ndtype: float32\n" in export_profile(AdaptivePool(), (3, 4, 4))


def test_adaptive_pooling_with_whole_windows_is_an_avgpool(tmp_path):
    out = str(tmp_path / "adaptive.yaml")
    text = export_profile(AdaptivePool(), (3, 4, 4), timesteps=2, batch=2, output=out)
    assert "  # AdaptiveAvgPool2d to 2x2 on 4x4: the same 2x2 windows (both save their input)\n" \
           "  - avgpool: {name: pool, kernel: 2}\n" in text


@needs_snnmem
@pytest.mark.parametrize("model", [SmallVGG, lambda: ResNetTiny(False), lambda: ResNetTiny(True), AdaptivePool])
def test_hand_written_models_save_what_their_export_plans(model, tmp_path):
    """The model itself, not a rebuilt one: what autograd saves in its bptt forward is the plan's figure."""
    net, out = model(), str(tmp_path / "model.yaml")
    shape = (3, 8, 8) if isinstance(net, ResNetTiny) else (3, 16, 16) if isinstance(net, SmallVGG) else (3, 4, 4)
    export_profile(net, shape, timesteps=3, batch=2, output=out)
    planned = plan(out, "--strategy", "bptt")["strategies"][0]["savedTensorBytes"]
    classes = P.load(out).classes
    assert saved_by_hooks(net, 3, 2, shape, classes) == planned


@pytest.mark.parametrize("sew", [False, True])
def test_resnet_blocks_export_as_residuals(sew, tmp_path):
    out = str(tmp_path / "resnet.yaml")
    export_profile(ResNetTiny(sew), (3, 8, 8), timesteps=2, batch=4, output=out)
    loaded = P.load(out)
    kinds = [layer.kind for layer in loaded.layers]
    assert kinds == (["conv", "batchnorm", "neuron", "residual", "residual", "globalavgpool", "flatten", "linear"] if sew
                     else ["conv", "batchnorm", "neuron", "residual", "neuron", "residual", "neuron", "globalavgpool",
                           "flatten", "linear"])
    blocks = [layer for layer in loaded.layers if layer.kind == "residual"]
    assert [layer.name for layer in blocks[0].main] == ["conv1", "bn1", "sn1", "conv2", "bn2"] + (["sn2"] if sew else [])
    assert blocks[0].shortcut == []
    assert [(layer.kind, layer.name) for layer in blocks[1].shortcut] == [("conv", "down.0"), ("batchnorm", "down.1")]
    if SNNMEM:
        assert plan(out)["strategies"]


@needs_snnmem
def test_cli_exports_a_factory_in_a_file(tmp_path, capsys):
    source = tmp_path / "nets.py"
    source.write_text("import sys\nsys.path.insert(0, %r)\nfrom test_export import ResNetTiny\n\n"
                      "def make(sew=False):\n    return ResNetTiny(sew)\n" % os.path.dirname(__file__))
    out = tmp_path / "tiny.yaml"
    code = main(["export", f"{source}:make", "--kwarg", "sew=True", "--input", "3x8x8", "--timesteps", "2", "--batch",
                 "3", "--optimizer", "adam", "--strategy", "sltt", "-o", str(out)])
    assert code == 0
    assert "next: snnmem plan" in capsys.readouterr().out
    text = out.read_text()
    assert "optimizer: {type: adam, learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-08}" in text
    assert "batch: 3" in text and "timesteps: 2" in text
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []  # written through a rename
    assert plan(str(out))["batch"] == 3


def test_cli_exports_event_frames(tmp_path):
    out = tmp_path / "dvs.yaml"
    code = main(["export", "spikingjelly.activation_based.model.parametric_lif_net:CIFAR10DVSNet", "--kwarg", "channels=4",
                 "--kwarg", "spiking_neuron=spikingjelly.activation_based.neuron.ParametricLIFNode", "--input", "2x128x128",
                 "--per-timestep", "--timesteps", "2", "--batch", "2", "-o", str(out)])
    assert code == 0
    loaded = P.load(str(out))
    assert loaded.input_per_timestep and loaded.neuron.type == "plif" and loaded.classes == 10


def test_kwargs_are_literals_names_calls_or_words():
    from snnmem_torch.export import parse_kwarg
    assert parse_kwarg("num_classes=10") == ("num_classes", 10)
    assert parse_kwarg("cnf=ADD") == ("cnf", "ADD")
    assert parse_kwarg("spiking_neuron=spikingjelly.activation_based.neuron.IFNode") == ("spiking_neuron", neuron.IFNode)
    key, made = parse_kwarg("surrogate_function=spikingjelly.activation_based.surrogate.ATan()")
    assert key == "surrogate_function" and isinstance(made, surrogate.ATan)
    with pytest.raises(ValueError, match="neither a Python literal nor an importable name"):
        parse_kwarg("x=no.such.module")


def test_optimizer_object_is_read():
    net = ResNetTiny()
    text = export_profile(net, (3, 8, 8), optimizer=torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.8,
                                                                       weight_decay=1e-4))
    assert "optimizer: {type: sgd, learningRate: 0.05, momentum: 0.8, weightDecay: 0.0001}" in text
    with pytest.raises(ExportError, match="AdamW is not an optimizer the profile language has"):
        export_profile(net, (3, 8, 8), optimizer=torch.optim.AdamW(net.parameters()))
    with pytest.raises(ExportError, match="not in the optimizer"):
        export_profile(net, (3, 8, 8), optimizer=torch.optim.SGD(net.fc.parameters(), lr=0.1))


# ----------------------------------------------------------------------------------------------
# (c) what the profile language cannot express (and two forks it can since `branches`: test_branches.py)


class Concat(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = layer.Conv2d(3, 4, 3, padding=1)
        self.sn = lif()
        self.b = layer.Conv2d(3, 4, 1)
        self.flat = layer.Flatten()
        self.fc = layer.Linear(8 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.flat(torch.cat([self.sn(self.a(x)), self.b(x)], dim=2)))


class ThreeConsumers(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = layer.Conv2d(3, 4, 3, padding=1)
        self.a = layer.Conv2d(4, 4, 3, padding=1)
        self.b = layer.Conv2d(4, 4, 1)
        self.flat = layer.Flatten()
        self.fc = layer.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = self.stem(x)
        return self.fc(self.flat(self.a(x) + self.b(x) + x))


def _with(module, **replace):
    for key, value in replace.items():
        setattr(module, key, value)
    return module


@pytest.mark.parametrize("model,where,why", [
    (nn.Sequential(layer.Conv2d(3, 4, 3), layer.SeqToANNContainer(nn.Dropout(0.5)), layer.Flatten(), layer.Linear(16, 3)),
     r"module '1.0' \(torch.*Dropout\)", "draws a new mask for every timestep.*SpikingJelly's multi-step layer.Dropout"),
    (nn.Sequential(layer.Conv2d(3, 4, 3), neuron.QIFNode(), layer.Flatten(), layer.Linear(16, 3)),
     r"module '1' \(.*QIFNode\)", "no QIFNode neuron"),
    (nn.Sequential(layer.Conv2d(3, 4, 3), neuron.LIFNode(surrogate_function=surrogate.PiecewiseQuadratic()),
                   layer.Flatten(), layer.Linear(16, 3)), r"module '1'", "surrogate PiecewiseQuadratic"),
    (nn.Sequential(layer.Conv2d(3, 4, 3), neuron.LIFNode(decay_input=False), layer.Flatten(), layer.Linear(16, 3)),
     r"module '1'", "decay_input=False"),
    (nn.Sequential(layer.Conv2d(3, 4, 3, dilation=2, padding=2), layer.Flatten(), layer.Linear(64, 3)),
     r"module '0' \(.*Conv2d\)", "no dilated convolution"),
    (nn.Sequential(layer.Conv2d(3, 4, (3, 1)), layer.Flatten(), layer.Linear(32, 3)), r"module '0'",
     r"kernel \(3, 1\) differs between height and width"),
    (nn.Sequential(layer.Conv2d(3, 4, 3), layer.BatchNorm2d(4, affine=False), layer.Flatten(), layer.Linear(16, 3)),
     r"module '1'", "affine=False"),
    (nn.Sequential(layer.Conv2d(3, 4, 3), layer.SeqToANNContainer(nn.ReLU()), layer.Flatten(), layer.Linear(16, 3)),
     r"module '1.0' \(torch.nn.modules.activation.ReLU\)", "ReLU has no profile layer"),
    (nn.Sequential(layer.Conv2d(3, 4, 3), layer.MaxPool2d(2, ceil_mode=True), layer.Flatten(), layer.Linear(4, 3)),
     r"module '1'", "ceil_mode=True"),
])
def test_unsupported_constructs_are_named(model, where, why):
    with pytest.raises(ExportError, match=where + ".*" + why) as info:
        export_profile(model, (3, 4, 4), timesteps=2, batch=2)
    assert "fix:" in str(info.value)


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = layer.Linear(48, 3), layer.Linear(48, 3)
        self.flat = layer.Flatten()

    def forward(self, x):
        x = self.flat(x)
        return self.a(x), self.b(x)


def test_outputs_other_than_class_scores_are_refused():
    with pytest.raises(ExportError, match="returns more than one tensor computed from 'flat'"):
        export_profile(TwoOutputs(), (3, 4, 4))
    with pytest.raises(ExportError, match=r"module '0'.*gives \[4, 2, 2\] per sample and timestep.*class scores"):
        export_profile(nn.Sequential(layer.Conv2d(3, 4, 3)), (3, 4, 4))


def test_plain_modules_outside_a_container_are_refused_clearly():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), layer.Flatten(), layer.Linear(16, 3))
    with pytest.raises(ExportError, match=r"(?s)module '0' \(torch.nn.modules.conv.Conv2d\): does not run in multi-step "
                       r"mode on \[\[2, 2, 3, 4, 4\]\].*SeqToANNContainer"):
        export_profile(model, (3, 4, 4))


def test_cli_refusal_exits_2(tmp_path, capsys):
    source = tmp_path / "cat_net.py"
    source.write_text("import sys\nsys.path.insert(0, %r)\nfrom test_branches import NotSeriesParallel\n"
                      % os.path.dirname(__file__))
    out = tmp_path / "never.yaml"
    assert main(["export", f"{source}:NotSeriesParallel", "--input", "3x4x4", "-o", str(out)]) == 2
    assert "not series-parallel" in capsys.readouterr().err
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# SpikingJelly's model zoo


def zoo(name: str):
    from spikingjelly.activation_based.model import sew_resnet, spiking_resnet, spiking_vgg
    kw = dict(spiking_neuron=neuron.LIFNode, surrogate_function=surrogate.ATan(), detach_reset=True, num_classes=10)
    return {
        "spiking_resnet18": lambda: spiking_resnet.spiking_resnet18(**kw),
        "sew_resnet18_add": lambda: sew_resnet.sew_resnet18(cnf="ADD", **kw),
        "spiking_resnet34": lambda: spiking_resnet.spiking_resnet34(**kw),
        "sew_resnet34_add": lambda: sew_resnet.sew_resnet34(cnf="ADD", **kw),
        "sew_resnet18_iand": lambda: sew_resnet.sew_resnet18(cnf="IAND", **kw),
        "sew_resnet18_and": lambda: sew_resnet.sew_resnet18(cnf="AND", **kw),
        "sew_resnet34_iand": lambda: sew_resnet.sew_resnet34(cnf="IAND", **kw),
        "spiking_vgg11_bn": lambda: spiking_vgg.spiking_vgg11_bn(**kw),
        "spiking_vgg13_bn": lambda: spiking_vgg.spiking_vgg13_bn(**kw),
    }[name]()


def saved_by_hooks(model: nn.Module, timesteps: int, batch: int, shape: tuple, classes: int) -> int:
    """What autograd saves in the measure package's bptt forward (repeated input, multi-step network,
    cross-entropy of the mean over time), storages counted once; parameters, buffers, images and labels
    left out, as the measure package counts them."""
    functional.set_step_mode(model, "m")
    model.train()
    torch.manual_seed(0)
    x, y = torch.rand(batch, *shape), torch.randint(0, classes, (batch,))
    skip = {t.untyped_storage().data_ptr() for t in [*model.parameters(), *model.buffers(), x, y]}
    seen, keep = {}, []

    def pack(t):
        keep.append(t)
        key = t.untyped_storage().data_ptr()
        if key not in skip:
            seen.setdefault(key, t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x.unsqueeze(0).repeat(timesteps, 1, 1, 1, 1))
        F.cross_entropy(out.mean(0) if out.dim() == 3 else out, y)
    functional.reset_net(model)
    return sum(seen.values())


@needs_snnmem
@pytest.mark.parametrize("name", ["spiking_resnet18", "sew_resnet18_add", "spiking_resnet34", "sew_resnet34_add",
                                  "sew_resnet18_iand", "sew_resnet18_and", "sew_resnet34_iand"])
def test_zoo_resnet_exports_and_plans_what_it_saves(name, tmp_path):
    out = str(tmp_path / f"{name}.yaml")
    model = zoo(name)
    export_profile(model, (3, 32, 32), timesteps=2, batch=2, name=name, output=out)
    planned = plan(out, "--strategy", "bptt")["strategies"][0]
    # The zoo model itself (not the rebuilt one) saves exactly what the plan of its export says.
    assert saved_by_hooks(model, 2, 2, (3, 32, 32), 10) == planned["savedTensorBytes"]
    # The exported profile measured by the measure package: saved bytes equal per layer, step peak within 1%.
    from snnmem_torch.measure import measure
    measured = measure(out, "bptt", stream=False)
    assert {e["layer"]: e["bytes"] for e in measured["savedByLayer"] if e["bytes"]} == \
        {e["layer"]: e["bytes"] for e in planned["savedByLayer"] if e["bytes"]}
    assert abs(measured["stepPeakBytes"] - planned["peakBytes"]) <= 0.01 * planned["peakBytes"]


@needs_snnmem
@pytest.mark.parametrize("name", ["spiking_vgg11_bn", "spiking_vgg13_bn"])
def test_zoo_vgg_exports_and_plans_what_it_saves(name, tmp_path):
    """At 32x32 the features end at 1x1, which AdaptiveAvgPool2d((7, 7)) upsamples (an `adaptiveavgpool`);
    the classifier's dropouts are SpikingJelly's multi-step ones (`dropout`, the mask saved once)."""
    test_zoo_resnet_exports_and_plans_what_it_saves(name, tmp_path)
    text = open(tmp_path / f"{name}.yaml").read()
    assert "adaptiveavgpool: {name: avgpool, output: [7, 7]}" in text
    assert text.count("dropout: {name: classifier.") == 2


def test_an_attention_whose_neurons_differ_is_refused_naming_the_part():
    """A profile's attention runs the default neuron in every part: a part set otherwise cannot be written."""
    from test_check import TINY_TRANSFORMER
    net = build(P.parse(TINY_TRANSFORMER, "tiny-transformer.yaml"))
    attention = next(m for m in net.modules() if type(m).__name__ == "SpikingSelfAttention")
    attention.k_lif.tau = 3.0
    with pytest.raises(ExportError, match=r"k_lif.*differ from q_lif's"):
        export_profile(net, (3, 8, 8), timesteps=2, batch=2)
