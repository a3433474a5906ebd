"""`snnmem-torch check MODULE:FACTORY --input CxHxW|N ...`: export the model's profile, plan it with snnmem
(the Swift CLI) and measure one training step of the model itself in PyTorch, then set predicted against
measured: saved-for-backward bytes per layer and in total, and the step peak.

What is measured is the user's own module (a copy of it: the measured step trains), not the network the
measure package would rebuild from the exported profile: the exporter remembers which module each
profile layer came from, and the measuring hooks are put on those modules. Layers that are functions in
the model (a residual add, torch.flatten) have no module; whatever autograd saves for them counts towards
the enclosing layer, as it does in the plan (adds and flattens save nothing).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn as nn

from .errors import UsageError

# The step peak may differ by this share of the predicted peak (the measure package's tolerance in the
# round-trip tests): allocator rounding and PyTorch's small scalars the plan does not itemise.
DEFAULT_TOLERANCE_PERCENT = 1.0


class ModelNetwork(nn.Module):
    """The user's model dressed as the builder's `Network`: `layers` (profile layer path -> the model's
    module, forward order) and `neurons` for the measure package's trainer and hooks."""

    def __init__(self, model: nn.Module, layers: dict, kinds: dict, sample_dims: int = 3):
        super().__init__()
        self.model = model
        self.layers = layers
        self.kinds = kinds
        self.sample_dims = sample_dims  # one sample's dimensions: 3 for images, 1 for a sequence's features

    @property
    def neurons(self) -> list:
        """(path, module) of every state carried across timesteps, as the builder's `Network.neurons`: a
        recurrent layer's fed-back output, then its neuron's v."""
        from spikingjelly.activation_based import layer as sj_layer
        out = []
        for path, module in self.layers.items():
            if self.kinds[path] == "neuron":
                out.append((path, module))
            elif self.kinds[path] == "recurrent":
                if isinstance(module, sj_layer.LinearRecurrentContainer):
                    out += [(path, FedBackState(module)), (path, module.sub_module)]
                else:
                    out += [(path, module), (path, module.neuron)]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        # A model that averages over time itself gives [B, classes]; the trainer's loss averages [T, B,
        # classes] over T, and the mean of one timestep is the scores themselves.
        if x.dim() == self.sample_dims + 2 and out.dim() == 2:
            return out.unsqueeze(0)
        return out


class FedBackState:
    """SpikingJelly's LinearRecurrentContainer keeps its fed-back output as `y`; the training strategies
    detach (sltt) and pass (checkpoint) every carried state as `v` (the package's RecurrentSpiking names
    its `y` so): this gives the container's `y` that name, and its forward pre-hooks this object."""

    def __init__(self, container: nn.Module):
        self.container = container

    @property
    def v(self):
        return self.container.y

    @v.setter
    def v(self, value):
        self.container.y = value

    def get_reset_value(self, name: str) -> object:
        return self.container.get_reset_value("y" if name == "v" else name)

    def register_forward_pre_hook(self, hook):
        return self.container.register_forward_pre_hook(lambda _, args: hook(self, args))


def layer_modules(model: nn.Module, entries: list, layers: list) -> tuple:
    """(profile layer path -> module, profile layer path -> kind) for every exported entry made from a
    module of `model`, walking the exported entries beside the profile's layers read back."""
    modules = dict(model.named_modules())
    found: dict = {}
    kinds: dict = {}

    def walk(entry_list: list, layer_list: list) -> None:
        for entry, layer in zip(entry_list, layer_list):
            module = modules.get(entry.source)
            if module is not None and entry.source != "":
                found[layer.path] = module
                kinds[layer.path] = layer.kind
                # An attention's parts are layers of their own, attributes of its module by their names.
                for part in getattr(layer, "parts", []) or []:
                    if isinstance(getattr(module, part.name, None), nn.Module):
                        found[part.path] = getattr(module, part.name)
                        kinds[part.path] = part.kind
            for entry_children, layer_children in _children(entry, layer):
                walk(entry_children, layer_children)

    walk(entries, layers)
    return found, kinds


def _children(entry, layer) -> list:
    """Nested layer lists of an entry and of its profile layer, pairwise."""
    pairs = []
    for name in ("main", "shortcut"):
        pairs.append((getattr(entry, name, []) or [], getattr(layer, name, []) or []))
    # A `branches` block: one list per path, in the same order in the export and the profile.
    pairs.extend(zip(getattr(entry, "paths", []) or [], getattr(layer, "paths", []) or []))
    return pairs


def snnmem_binary() -> str:
    """The Swift CLI: $SNNMEM_BIN, else this repository's .build/release/snnmem, else `snnmem` on PATH."""
    explicit = os.environ.get("SNNMEM_BIN")
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise UsageError(f"SNNMEM_BIN={explicit} is not an executable file; point it at a built snnmem "
                         "(swift build -c release --product snnmem gives .build/release/snnmem)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    built = os.path.join(root, ".build", "release", "snnmem")
    if os.path.isfile(built) and os.access(built, os.X_OK):
        return built
    on_path = shutil.which("snnmem")
    if on_path:
        return on_path
    raise UsageError("the snnmem CLI was not found (set SNNMEM_BIN, put snnmem on PATH, or build it in this "
                     "repository: swift build -c release --product snnmem)")


def plan(binary: str, profile_path: str, strategy: str, runtime: str, threads: int,
         segment: Optional[int] = None) -> dict:
    """`snnmem plan` of one strategy, as JSON: the entry of `strategies` for it, and the document."""
    command = [binary, "plan", profile_path, "--strategy", strategy, "--runtime", runtime, "--format", "json"]
    if runtime == "pytorch-cpu":
        command += ["--cpu-threads", str(threads)]
    if segment is not None:
        command += ["--segment", str(segment)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise UsageError(f"{' '.join(command)} exited {run.returncode}:\n{run.stderr.strip()}")
    document = json.loads(run.stdout)
    for entry in document.get("strategies", []):
        if entry.get("strategy") == strategy:
            return entry
    reasons = "; ".join(f"{n.get('strategy')}: {n.get('reason')}" for n in document.get("notApplicable", []))
    raise UsageError(f"snnmem plans no {strategy} for this model" + (f" ({reasons})" if reasons else ""))


@dataclass
class LayerRow:
    layer: str
    predicted_bytes: int
    measured_bytes: int

    @property
    def agrees(self) -> bool:
        return self.predicted_bytes == self.measured_bytes


@dataclass
class CheckResult:
    profile_path: str
    runtime: str
    strategy: str
    measurement: dict
    planned: dict
    tolerance_percent: float
    rows: list = field(default_factory=list)

    @property
    def predicted_saved_bytes(self) -> int:
        return sum(row.predicted_bytes for row in self.rows)

    @property
    def measured_saved_bytes(self) -> int:
        return int(self.measurement["savedBytes"])

    @property
    def predicted_peak_bytes(self) -> int:
        return int(self.planned["peakBytes"])

    @property
    def measured_peak_bytes(self) -> int:
        return int(self.measurement["stepPeakBytes"])

    @property
    def peak_error_percent(self) -> float:
        return 100.0 * (self.measured_peak_bytes - self.predicted_peak_bytes) / max(1, self.predicted_peak_bytes)

    @property
    def agrees(self) -> bool:
        return (all(row.agrees for row in self.rows) and self.predicted_saved_bytes == self.measured_saved_bytes
                and abs(self.peak_error_percent) <= self.tolerance_percent)

    def to_json(self) -> dict:
        m = self.measurement
        return {
            "document": "snnmem-torch.check", "formatVersion": 1,
            "profileFile": self.profile_path, "runtime": self.runtime, "strategy": self.strategy,
            "segment": m.get("segment"), "batch": m["batch"], "timesteps": m["timesteps"], "dtype": m["dtype"],
            "threads": m["threads"], "device": m["device"], "torch": m["torch"], "spikingjelly": m["spikingjelly"],
            "savedByLayer": [{"layer": r.layer, "predictedBytes": r.predicted_bytes, "measuredBytes": r.measured_bytes}
                             for r in self.rows],
            "predictedSavedBytes": self.predicted_saved_bytes, "measuredSavedBytes": self.measured_saved_bytes,
            "predictedPeakBytes": self.predicted_peak_bytes, "measuredPeakBytes": self.measured_peak_bytes,
            "peakErrorPercent": round(self.peak_error_percent, 4), "tolerancePercent": self.tolerance_percent,
            "agrees": self.agrees,
        }


def saved_seen_by_hooks(planned: dict, strategy: str, timestep: Optional[int]) -> dict:
    """The plan's saved bytes by the layer keeping them, as the measure package's hooks see them (the
    Swift `MemoryPlan.savedBytesSeenByHooks`): not what a checkpoint recomputation saves again in
    backward, and under sltt only the measured timestep's (each timestep keeps its own, one at a time)."""
    by_layer: dict = {}
    for tensor in planned.get("savedTensors", []):
        if str(tensor.get("phase", "")).startswith("recompute"):
            continue
        if strategy == "sltt" and timestep is not None and tensor.get("timestep") != timestep:
            continue
        layer = tensor.get("keptBy") or tensor["layer"]
        by_layer[layer] = by_layer.get(layer, 0) + int(tensor["bytes"])
    return by_layer


def compare(profile_path: str, runtime: str, strategy: str, planned: dict, measurement: dict,
            tolerance_percent: float) -> CheckResult:
    predicted = saved_seen_by_hooks(planned, strategy, measurement.get("savedTimestep"))
    measured = {e["layer"]: int(e["bytes"]) for e in measurement.get("savedByLayer", [])}
    order = list(predicted)
    order += [layer for layer in measured if layer not in predicted]
    rows = [LayerRow(layer, predicted.get(layer, 0), measured.get(layer, 0)) for layer in order
            if predicted.get(layer, 0) or measured.get(layer, 0)]
    return CheckResult(profile_path, runtime, strategy, measurement, planned, tolerance_percent, rows)


def check_model(model: nn.Module, example_input, timesteps: Optional[int] = None, batch: Optional[int] = None,
                strategy: str = "bptt", segment: Optional[int] = None, optimizer=None, dtype: Optional[str] = None,
                name: Optional[str] = None, profile_out: Optional[str] = None, source: Optional[str] = None,
                device: str = "cpu", tolerance_percent: float = DEFAULT_TOLERANCE_PERCENT, seed: int = 0,
                binary: Optional[str] = None, input_per_timestep: bool = False) -> CheckResult:
    """Export `model`, plan the export with snnmem and measure `model` itself (a copy) in one training step.

    `example_input` as in export: (C, H, W) images or (N,) features of a sequence [T, B, N].
    `input_per_timestep`: the model is fed event frames or a sequence (another sample each timestep), as in
    export.
    Raises `ExportError` when the profile language cannot express the model and `UsageError` for a bad
    option, a missing snnmem CLI or a strategy the model cannot run."""
    from spikingjelly.activation_based import functional

    from .export import export_profile
    from .measure import measure
    from .profile import load

    if strategy not in ("bptt", "sltt", "checkpoint"):
        raise UsageError(f"check measures bptt, sltt or checkpoint on the model itself, not {strategy} (a "
                         f"{strategy} network is built by the measure package: snnmem-torch measure PROFILE "
                         f"--strategy {strategy})")
    from .export_trevsnn import is_builders_trev_network
    if is_builders_trev_network(model):
        raise UsageError("check measures a model through its multi-step modules; a T-RevSNN network runs columns of its "
                         "own (export it, then: snnmem-torch measure PROFILE --strategy trevsnn)")
    binary = binary or snnmem_binary()
    folder = None
    if profile_out is None:
        folder = tempfile.TemporaryDirectory(prefix="snnmem-check-")
        profile_path = os.path.join(folder.name, "exported.yaml")
    else:
        profile_path = profile_out
    try:
        entries: list = []
        export_profile(model, example_input, timesteps=timesteps, batch=batch, optimizer=optimizer, dtype=dtype,
                       name=name, output=profile_path, source=source, entries_out=entries,
                       input_per_timestep=input_per_timestep)
        profile = load(profile_path)
        subject = copy.deepcopy(model).train()
        layers, kinds = layer_modules(subject, entries, profile.layers)
        functional.set_step_mode(subject, "s" if strategy == "sltt" else "m")
        from .export_recurrent import keep_inner_neurons_single_step
        keep_inner_neurons_single_step(subject)  # set_step_mode reaches the neuron inside a recurrence too
        functional.reset_net(subject)
        net = ModelNetwork(subject, layers, kinds, len(profile.input_shape))
        try:
            measurement = measure(profile_path, strategy, segment=segment, device=device, stream=False, seed=seed,
                                  net=net)
        except UsageError:
            raise
        except Exception as error:  # noqa: BLE001 - the model's own forward failed under this strategy
            raise UsageError(f"the model did not run a {strategy} training step "
                             f"({'single-step' if strategy == 'sltt' else 'multi-step'}): "
                             f"{type(error).__name__}: {error}") from None
        runtime = "pytorch-cuda" if device == "cuda" else "pytorch-cpu"
        planned = plan(binary, profile_path, strategy, runtime, int(measurement["threads"]), measurement.get("segment"))
        return compare(profile_out or "(not kept: pass -o to keep the profile)", runtime, strategy, planned,
                       measurement, tolerance_percent)
    finally:
        if folder is not None:
            folder.cleanup()


def table(result: CheckResult) -> str:
    from .output import human

    m = result.measurement
    lines = [f"{m['profile']}: {result.strategy}" + (f" k={m['segment']}" if m.get("segment") else "")
             + f", T={m['timesteps']}, B={m['batch']}, {m['dtype']}, {result.runtime} ({m['threads']} threads), "
             f"torch {m['torch']}, spikingjelly {m['spikingjelly']}",
             f"profile: {result.profile_path}", ""]
    rows = [("layer", "predicted", "measured", "")]
    for row in result.rows:
        rows.append((row.layer, human(row.predicted_bytes), human(row.measured_bytes),
                     "" if row.agrees else f"differs by {row.measured_bytes - row.predicted_bytes:+d} B"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for i, r in enumerate(rows):
        lines.append(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    saved_ok = result.predicted_saved_bytes == result.measured_saved_bytes
    if result.strategy == "sltt":
        lines.append(f"saved for backward: timestep {m.get('savedTimestep')}'s (sltt keeps one timestep's at a time)")
    elif result.strategy == "checkpoint":
        lines.append("saved for backward: in the forward (what recomputations save again in backward is in the peak)")
    lines.append(f"saved for backward  predicted {human(result.predicted_saved_bytes)} ({result.predicted_saved_bytes} B)"
                 f", measured {human(result.measured_saved_bytes)} ({result.measured_saved_bytes} B): "
                 + ("equal" if saved_ok else "differ"))
    lines.append(f"step peak           predicted {human(result.predicted_peak_bytes)} ({result.predicted_peak_bytes} B)"
                 f", measured {human(result.measured_peak_bytes)} ({result.measured_peak_bytes} B): "
                 f"{result.peak_error_percent:+.3f}% (tolerance {result.tolerance_percent:g}%)")
    lines.append("agrees" if result.agrees else "DOES NOT AGREE: the prediction for this model is off (please report "
                 "it with the exported profile)")
    return "\n".join(lines)


__all__ = ["check_model", "CheckResult", "ModelNetwork", "compare", "layer_modules", "plan", "snnmem_binary", "table"]
