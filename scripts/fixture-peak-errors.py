#!/usr/bin/env python3
"""Plans every committed pytorch-cpu measurement (Tests/PlannerTests/Fixtures/pytorch/*.json) with the
built CLI and prints, per dtype, how many there are and the largest step-peak error against PyTorch's
measured peak: the figures the README's runtime table quotes. Run from the repository root after
`swift build -c release`."""
import glob
import json
import os
import subprocess
import sys

FIXTURES = "Tests/PlannerTests/Fixtures/pytorch"
SNNMEM = os.environ.get("SNNMEM_BIN", ".build/release/snnmem")


def profile_path(fixture: dict) -> str:
    named = fixture["profileFile"]
    candidates = [named] + [os.path.join(d, os.path.basename(named))
                            for d in (os.path.join(FIXTURES, "profiles"), "python/tests/profiles", "profiles")]
    return next((c for c in candidates if os.path.exists(c)), named)


def planned_peak(fixture: dict) -> int:
    cmd = [SNNMEM, "plan", profile_path(fixture), "--runtime", "pytorch-cpu", "--strategy", fixture["strategy"],
           "--timesteps", str(fixture["timesteps"]), "--batch", str(fixture["batch"]), "--dtype", fixture["dtype"],
           "--cpu-threads", str(fixture.get("threads", 2)), "--format", "json"]
    if fixture.get("segment"):
        cmd += ["--segment", str(fixture["segment"])]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{result.stderr}")
    return json.loads(result.stdout)["strategies"][0]["peakBytes"]


def main() -> None:
    errors = {}
    for path in sorted(glob.glob(os.path.join(FIXTURES, "*.json"))):
        fixture = json.load(open(path))
        measured = fixture["stepPeakBytes"]
        error = (planned_peak(fixture) - measured) / measured * 100
        errors.setdefault(fixture["dtype"], []).append((abs(error), error, os.path.basename(path)))
    for dtype, rows in sorted(errors.items()):
        worst = max(rows)
        print(f"{dtype}: {len(rows)} measurements, largest peak error {worst[1]:+.3f}% ({worst[2]})")


if __name__ == "__main__":
    main()
