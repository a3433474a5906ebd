import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))  # python/, so the tests run without the editable install too

SNNMEM = os.path.join(ROOT, ".build", "release", "snnmem")


def planned_and_measured_on_cpu(path, strategy: str):
    """One strategy's pytorch-cpu plan (`snnmem plan --format json`) and PyTorch's measurement of that step."""
    from snnmem_torch.measure import measure
    planned = json.loads(subprocess.run([SNNMEM, "plan", path, "--format", "json", "--runtime", "pytorch-cpu",
                                         "--strategy", strategy], capture_output=True, text=True,
                                        check=True).stdout)["strategies"][0]
    return planned, measure(path, strategy, stream=False)


def saved_by_layer(entry: dict) -> dict:
    """A plan's or a measurement's saved bytes per layer, the layers that save nothing left out."""
    return {e["layer"]: e["bytes"] for e in entry["savedByLayer"] if e["bytes"]}


def assert_loader_fails_as_snnmem(path) -> str:
    """The Python loader refuses `path` with the Swift CLI's message, word for word (the CLI's exit code 2);
    returns the message."""
    from snnmem_torch import profile as P
    from snnmem_torch.errors import ProfileError
    swift = subprocess.run([SNNMEM, "plan", str(path)], capture_output=True, text=True)
    assert swift.returncode == 2, swift.stdout
    with pytest.raises(ProfileError) as info:
        P.load(str(path))
    assert str(info.value) == swift.stderr.strip()
    return str(info.value)


BUNDLED = ["cifarnet", "digits", "vgg11", "vgg13", "resnet19", "resnet18", "sew-resnet34",
           "revsresnet21", "revsresnet37", "revvgg13", "trevsnn-cifar", "spiking-unet", "cifar10dvs", "spikformer-4-384",
           "spike-driven-transformer-8-512"]
EXPRESSIBLE = ["cifarnet", "digits", "vgg11", "vgg13", "resnet19", "resnet18", "sew-resnet34", "spiking-unet", "cifar10dvs"]
# Sequence inputs ([T, B, features], input: {features: N, perTimestep: true}) with a recurrent layer: built,
# measured and exported.
SEQUENCE = ["shd-recurrent"]
# Spiking transformers (attention.py): built and measured, not exported (the exporter has no attention).
TRANSFORMER = ["spikformer-4-384", "spike-driven-transformer-8-512"]
# Reversible stages build (reversible.py); revsnn runs them through RevSNN's custom function.
REVERSIBLE = ["revsresnet21", "revsresnet37", "revvgg13"]
# T-RevSNN (trevsnn.py): bptt runs its columns under plain autograd, trevsnn through its custom function.
TREV = ["trevsnn-cifar"]

# Two levels (4 channels at 4x4, 8 at 2x2) on a 3x8x8 image: every T-RevSNN construct (down and up
# paths, upsample, a ConvNeXt-style block with depthwise conv and layer scale, turn-off neurons with
# a sigmoid surrogate, per-channel alpha, a head per column), small enough to step in milliseconds.
TREV_TINY = """
name: trev-tiny
input: {channels: 3, height: 8, width: 8}
timesteps: 3
batch: 2
neuron: {type: lif, threshold: 0.5, surrogate: {type: sigmoid, alpha: 4.0}}
optimizer: {type: adam, learningRate: 0.001}
layers:
  - conv: {name: stem, out: 4, kernel: 3, stride: 2, padding: 1}
  - batchnorm: {name: stem_bn}
  - trevsnn:
      name: trev
      kernel: 3
      expansion: 2
      alpha: 0.5
      layerScale: 0.5
      classes: 3
      levels:
        - {channels: 4, blocks: 1}
        - {channels: 8, blocks: 2}
"""

# conv 1->2 (3x3, pad 1) on 1x4x4, LIF, flatten, linear 32->3: no batch norm, so checkpointing
# over time segments computes exactly bptt's function.
TINY = """
input: {channels: 1, height: 4, width: 4}
timesteps: 4
batch: 2
optimizer: {type: sgd, momentum: 0.9}
layers:
  - conv: {name: conv, out: 2, kernel: 3, padding: 1}
  - neuron: {name: lif}
  - flatten
  - linear: {name: fc, out: 3}
"""

# A repeated residual block with a 1x1-conv shortcut, a soft-reset IF neuron with detach_reset,
# max and global average pooling: every construct the builder knows, small.
RESIDUAL = """
name: residual-tiny
input: {channels: 3, height: 8, width: 8}
timesteps: 2
batch: 2
neuron: {type: lif, tau: 2.0, reset: hard, surrogate: {type: sigmoid, alpha: 4.0}}
optimizer: {type: adam, learningRate: 0.001}
layers:
  - conv: {name: stem, out: 4, kernel: 3, padding: 1}
  - batchnorm
  - neuron: {name: sn, type: if, reset: soft, detachReset: true}
  - maxpool: {name: pool, kernel: 2}
  - repeat:
      name: stage
      times: 2
      layers:
        - residual:
            name: block
            main:
              - conv: {name: conv1, out: 4, kernel: 3, padding: 1}
              - batchnorm: {name: bn1}
              - neuron: {name: lif1}
            shortcut:
              - conv: {name: conv, out: 4, kernel: 1}
  - globalavgpool: {name: gap}
  - flatten
  - linear: {name: fc, out: 3}
"""


def profile_path(name: str) -> str:
    return os.path.join(ROOT, "profiles", f"{name}.yaml")


@pytest.fixture
def write_profile(tmp_path):
    def write(text: str, name: str = "p.yaml") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write
