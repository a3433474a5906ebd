#!/usr/bin/env python3
"""Side-by-side speed of one CIFARNet training step (T=4, batch 16, bptt: forward, backward, SGD):
snnmem's engine with its AVX-512 GEMM, the same engine on OpenBLAS (SNNMEM_GEMM=openblas), and
PyTorch eager (scripts/pytorch-cifarnet-step.py) when the given Python has torch.

Absolute times drift on a shared 2-core machine, so the three run interleaved, round after round,
and the result is each round's ratio to PyTorch, then the median over rounds. Every run trains
`--steps` steps after the same number of warm-up steps and reports its median step.

  python3 scripts/benchmark-cifarnet-step.py [--rounds 5] [--steps 10] [--python /path/with/torch/python]
      [--json FILE]

Build first: swift build -c release --product snnmem. PyTorch is not a dependency of snnmem; install
it beside (python3 -m venv /tmp/torch && /tmp/torch/bin/pip install torch) to get the reference.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNNMEM = os.path.join(ROOT, ".build", "release", "snnmem")
PROFILE = os.path.join(ROOT, "profiles", "cifarnet.yaml")
TORCH_SCRIPT = os.path.join(ROOT, "scripts", "pytorch-cifarnet-step.py")


# Steps run and not measured, by both: the first steps map pages and warm caches (snnmem's first
# two or three run 30-70% slower while jemalloc's retained extents settle into the step's pattern).
WARMUP_STEPS = 3


def snnmem_step_ms(gemm, steps):
    env = dict(os.environ, SNNMEM_GEMM=gemm)
    out = subprocess.run([SNNMEM, "run", PROFILE, "--strategy", "bptt", "--steps", str(steps + WARMUP_STEPS), "--format", "json"],
                         env=env, check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    if result["predictedPeakBytes"] != result["measuredPeakBytes"]:
        sys.exit(f"snnmem ({gemm}): measured peak {result['measuredPeakBytes']} != predicted {result['predictedPeakBytes']}")
    return statistics.median(result["stepMs"][WARMUP_STEPS:])


def torch_step_ms(python, steps, mode):
    out = subprocess.run([python, TORCH_SCRIPT, "--mode", mode, "--steps", str(steps), "--warmup", str(WARMUP_STEPS)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["medianStepMs"], result["torch"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--python", default=sys.executable, help="a Python with torch installed")
    parser.add_argument("--json", help="also write the rounds and medians here")
    args = parser.parse_args()
    if not os.path.exists(SNNMEM):
        sys.exit(f"{SNNMEM} not found: run `swift build -c release --product snnmem` first")
    has_torch = subprocess.run([args.python, "-c", "import torch"], capture_output=True).returncode == 0
    if not has_torch:
        print(f"note: {args.python} has no torch; measuring snnmem only (see --python)", file=sys.stderr)

    columns = ["snnmem avx512", "snnmem openblas"] + (["pytorch step", "pytorch layer"] if has_torch else [])
    rounds, torch_version = [], None
    print("OPENBLAS_CORETYPE=" + os.environ.get("OPENBLAS_CORETYPE", "(unset)"), f"{args.rounds} rounds x {args.steps} steps")
    print("| round | " + " | ".join(f"{c} ms" for c in columns) + (" | avx512 / pytorch | openblas / pytorch |" if has_torch else " |"))
    print("|---" * (len(columns) + 1 + (2 if has_torch else 0)) + "|")
    for r in range(args.rounds):
        row = {"snnmem avx512": snnmem_step_ms("avx512", args.steps), "snnmem openblas": snnmem_step_ms("openblas", args.steps)}
        if has_torch:
            row["pytorch step"], torch_version = torch_step_ms(args.python, args.steps, "step")
            row["pytorch layer"], _ = torch_step_ms(args.python, args.steps, "layer")
            row["avx512 / pytorch"] = row["snnmem avx512"] / row["pytorch step"]
            row["openblas / pytorch"] = row["snnmem openblas"] / row["pytorch step"]
        rounds.append(row)
        cells = [f"{row[c]:.1f}" for c in columns]
        if has_torch:
            cells += [f"{row['avx512 / pytorch']:.2f}", f"{row['openblas / pytorch']:.2f}"]
        print(f"| {r + 1} | " + " | ".join(cells) + " |")

    keys = list(rounds[0].keys())
    medians = {k: statistics.median(row[k] for row in rounds) for k in keys}
    cells = [f"{medians[c]:.1f}" for c in columns]
    if has_torch:
        cells += [f"{medians['avx512 / pytorch']:.2f}", f"{medians['openblas / pytorch']:.2f}"]
    print("| median | " + " | ".join(cells) + " |")
    if has_torch:
        print(f"PyTorch {torch_version}, 2 threads; 'pytorch step' runs the network per timestep as snnmem does, "
              "'pytorch layer' each conv over all T*B samples (SpikingJelly's multi-step mode).")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump({"torch": torch_version, "rounds": rounds, "medians": medians}, f, indent=2)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
