"""`snnmem-torch sweep PROFILE --timesteps 1,2,4 [--batch B] [--runtime pytorch-cpu] [--strategies bptt,sltt]`:
the PyTorch counterpart of `snnmem sweep --measure`. At each T it plans the step with the snnmem CLI
(`snnmem plan --runtime R --timesteps T --batch B`) and measures one training step of the profile's network in
PyTorch at the same point (`measure`), and prints both: the bytes autograd keeps for backward (summed over
the layers, as the saved-tensor hooks see them; bptt only: SLTT's hooks see one timestep's, checkpoint's the
segments' inputs) and the step peak. A point the runtime does not model is measured and marked with the plan's reason."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from typing import Optional

from .errors import UsageError


@dataclass
class SweepPoint:
    strategy: str
    timesteps: int
    measured_peak: int
    measured_saved: int
    planned_peak: Optional[int] = None
    planned_saved: Optional[int] = None
    refused: str = ""

    @property
    def peak_error(self) -> Optional[float]:
        """(planned - measured) / measured, or None when not planned."""
        if self.planned_peak is None:
            return None
        return (self.planned_peak - self.measured_peak) / self.measured_peak

    @property
    def compares_saved(self) -> bool:
        # bptt only: under checkpoint the hooks see the checkpoint's inputs in forward while the plan also counts
        # the recomputation's saves; under SLTT they see one timestep's.
        return self.strategy == "bptt" and self.planned_saved is not None

    def agrees(self, tolerance: float) -> bool:
        if self.planned_peak is None:
            return True  # nothing predicted: reported, not judged
        saved_ok = not self.compares_saved or self.planned_saved == self.measured_saved
        return saved_ok and abs(self.peak_error) <= tolerance


def _planned(binary: str, profile: str, strategy: str, runtime: str, timesteps: int, batch: int) -> tuple:
    """(peak, saved bytes, refusal reason) from `snnmem plan --format json`."""
    # Every strategy in one plan: one the runtime does not model comes back in `notApplicable` with its reason.
    command = [binary, "plan", profile, "--runtime", runtime, "--timesteps", str(timesteps),
               "--batch", str(batch), "--format", "json"]
    if runtime == "pytorch-cpu":
        import torch
        command += ["--cpu-threads", str(torch.get_num_threads())]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise UsageError(f"{' '.join(command)} exited {run.returncode}:\n{run.stderr.strip()}")
    document = json.loads(run.stdout)
    for entry in document.get("strategies", []):
        if entry.get("strategy") == strategy:
            return entry["peakBytes"], sum(e["bytes"] for e in entry.get("savedByLayer", [])), ""
    reasons = [n.get("reason", "") for n in document.get("notApplicable", []) if n.get("strategy") == strategy]
    return None, None, (reasons[0] if reasons else f"no {strategy} plan")


def sweep(profile: str, timesteps: list, batch: Optional[int] = None, runtime: str = "pytorch-cpu",
          strategies: tuple = ("bptt",), seed: int = 0) -> list:
    from .check import snnmem_binary
    from .measure import measure
    from .profile import load

    if runtime not in ("pytorch-cpu", "pytorch-cuda"):
        raise UsageError(f"--runtime {runtime}: use pytorch-cpu or pytorch-cuda (snnmem's own engine: snnmem sweep --measure)")
    device = "cuda" if runtime == "pytorch-cuda" else "cpu"
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise UsageError("--runtime pytorch-cuda: no CUDA device is available to PyTorch here")
    batch = batch if batch is not None else load(profile).batch
    binary = snnmem_binary()
    points = []
    for strategy in strategies:
        for t in timesteps:
            peak, saved, reason = _planned(binary, profile, strategy, runtime, t, batch)
            m = measure(profile, strategy, batch, t, None, device, stream=False, seed=seed)
            measured_saved = sum(e["bytes"] for e in m["savedByLayer"])
            points.append(SweepPoint(strategy, t, m["stepPeakBytes"], measured_saved, peak, saved, reason))
    return points


def _bytes(value: Optional[int]) -> str:
    return "-" if value is None else f"{value:,}"


def table(points: list, profile: str, batch: int, runtime: str) -> str:
    lines = [f"{profile}: PyTorch measured against the {runtime} plan, batch {batch} (bytes)",
             f"{'strategy':<10} {'T':>4} {'saved plan':>13} {'saved meas':>13} {'peak plan':>13} {'peak meas':>13} {'peak diff':>9}"]
    notes = []
    for p in points:
        diff = "-" if p.peak_error is None else f"{p.peak_error * 100:+.2f}%"
        planned_saved = _bytes(p.planned_saved) if p.compares_saved else "-"
        measured_saved = _bytes(p.measured_saved) if p.strategy == "bptt" else "-"
        lines.append(f"{p.strategy:<10} {p.timesteps:>4} {planned_saved:>13} {measured_saved:>13} {_bytes(p.planned_peak):>13} "
                     f"{_bytes(p.measured_peak):>13} {diff:>9}")
        if p.refused and p.refused not in notes:
            notes.append(p.refused)
    lines.append("saved: bytes autograd keeps for backward over the step (bptt)")
    lines += [f"not planned: {note}" for note in notes]
    return "\n".join(lines)
