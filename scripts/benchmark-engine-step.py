#!/usr/bin/env python3
"""Side-by-side speed of one training step (bptt: forward over T=4 timesteps, backward, SGD with
momentum) of CIFARNet and VGG-11 at batch 16: snnmem's engine (the GEMM it prefers here, its convolutions'
spike products where they pay; again with every conv on the dense GEMM, SNNMEM_SPIKE_GEMM=off, unless
--no-dense; with --openblas also on OpenBLAS), the pure-PyTorch eager script (scripts/pytorch-step.py, the network
per timestep as snnmem runs it) and SpikingJelly's multi-step modules (scripts/spikingjelly-step.py,
each layer over all T*B samples), when the given Python has torch (and spikingjelly).

Absolute times drift on a shared 2-core machine, so every run of a round follows the others, round
after round, and the result is each round's ratio snnmem / PyTorch, then the median over rounds.
Every run trains `--steps` steps after the same number of warm-up steps and reports its median step.
The load average is printed with each round.

  python3 scripts/benchmark-engine-step.py [--rounds 5] [--steps 10] [--batch 16] [--networks cifarnet,vgg11]
      [--python /path/with/torch/python] [--openblas] [--no-dense] [--json FILE]

Build first: swift build -c release --product snnmem. PyTorch is not a dependency of snnmem:
bash scripts/install-python.sh installs it (and SpikingJelly) into .venv-torch.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNNMEM = os.path.join(ROOT, ".build", "release", "snnmem")
TORCH_SCRIPT = os.path.join(ROOT, "scripts", "pytorch-step.py")
SJ_SCRIPT = os.path.join(ROOT, "scripts", "spikingjelly-step.py")

# Steps run and not measured, by every side: the first steps map pages and warm caches (snnmem's first
# two or three run 30-70% slower while jemalloc's retained extents settle into the step's pattern).
WARMUP_STEPS = 3


def profile_path(network):
    return os.path.join(ROOT, "profiles", f"{network}.yaml")


def snnmem_step(network, batch, steps, gemm=None, spikes=True):
    """Median step (ms), the GEMM and elementwise level it ran on and what its convolutions' spike
    products did; stops if the measured peak is not the plan's. spikes=False runs every conv on the
    dense GEMM (SNNMEM_SPIKE_GEMM=off)."""
    env = dict(os.environ)
    if gemm:
        env["SNNMEM_GEMM"] = gemm
    if not spikes:
        env["SNNMEM_SPIKE_GEMM"] = "off"
    out = subprocess.run([SNNMEM, "run", profile_path(network), "--strategy", "bptt", "--batch", str(batch),
                          "--steps", str(steps + WARMUP_STEPS), "--format", "json"],
                         env=env, check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    if result["predictedPeakBytes"] != result["measuredPeakBytes"]:
        sys.exit(f"snnmem {network}: measured peak {result['measuredPeakBytes']} != predicted {result['predictedPeakBytes']}")
    return statistics.median(result["stepMs"][WARMUP_STEPS:]), result["gemm"], result.get("elementwise", "?"), \
        spike_summary(result.get("spikeProducts"))


def spike_summary(spikes):
    """Whether the run's convolutions skipped zeros, in words (from `snnmem run --format json`'s spikeProducts)."""
    if not spikes:
        return "spike products: not reported"
    if not spikes["enabled"]:
        return "spike products off"
    density = f", inputs {100 * spikes['inputDensity']:.1f}% nonzero" if spikes.get("inputDensity") is not None else ""
    return (f"spike products in {spikes['forwardSparseCalls']} of {spikes['forwardCalls']} conv forwards and "
            f"{spikes['weightGradientSparseCalls']} of {spikes['weightGradientCalls']} weight gradients{density}")


def python_step(python, command):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run([python] + command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def torch_capability(python):
    """ATen's CPU capability in the given Python, under this environment."""
    run = subprocess.run([python, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"], capture_output=True, text=True)
    return run.stdout.strip() or "?"


def processor():
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    flags = fields.get("flags", "").split()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else os.uname().machine
    return (f"{fields.get('model name', os.uname().machine)} (family {fields.get('cpu family', '?')}, "
            f"model {fields.get('model', '?')}), {os.cpu_count()} cores, {isa}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--networks", default="cifarnet,vgg11")
    parser.add_argument("--python", default=sys.executable, help="a Python with torch (and spikingjelly) installed")
    parser.add_argument("--openblas", action="store_true", help="also run snnmem on OpenBLAS (SNNMEM_GEMM=openblas)")
    parser.add_argument("--no-dense", action="store_true",
                        help="leave out the run of snnmem with every conv on the dense GEMM (SNNMEM_SPIKE_GEMM=off)")
    parser.add_argument("--json", help="also write the rounds and medians here")
    args = parser.parse_args()
    if not os.path.exists(SNNMEM):
        sys.exit(f"{SNNMEM} not found: run `swift build -c release --product snnmem` first")
    networks = [n for n in args.networks.split(",") if n]
    for network in networks:
        if not os.path.exists(profile_path(network)):
            sys.exit(f"--networks: no profile {profile_path(network)}")
    has_torch = subprocess.run([args.python, "-c", "import torch"], capture_output=True).returncode == 0
    has_sj = has_torch and subprocess.run([args.python, "-c", "import spikingjelly"], capture_output=True).returncode == 0
    if not has_torch:
        print(f"note: {args.python} has no torch; measuring snnmem only (see --python)", file=sys.stderr)
    elif not has_sj:
        print(f"note: {args.python} has no spikingjelly; SpikingJelly's multi-step column is left out", file=sys.stderr)

    dense = not args.no_dense
    columns = ["snnmem"] + (["snnmem dense"] if dense else []) + (["snnmem openblas"] if args.openblas else []) + \
              (["pytorch"] if has_torch else []) + (["spikingjelly"] if has_sj else [])
    ratios = (["snnmem / dense"] if dense else []) + (["snnmem / pytorch"] if has_torch else []) + \
             (["snnmem / spikingjelly"] if has_sj else [])
    print(f"processor: {processor()}; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    forced = [f"{name}={os.environ[name]}" for name in ("SNNMEM_ISA", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
              if os.environ.get(name)]
    if forced:
        print("instruction sets limited by " + " ".join(forced) + (f" (ATen reports {torch_capability(args.python)})" if has_torch else ""))
    print(f"bptt step, T=4, batch {args.batch}: median of {args.steps} steps after {WARMUP_STEPS}; {args.rounds} rounds, "
          "every run of a round after the other")
    print("| round | load | network | " + " | ".join(f"{c} ms" for c in columns) + " | " + " | ".join(ratios) + " |")
    print("|---" * (3 + len(columns) + len(ratios)) + "|")
    rounds, versions, paths = [], {}, {}
    for r in range(args.rounds):
        for network in networks:
            load = os.getloadavg()[0]
            row = {"round": r + 1, "load": load, "network": network}
            row["snnmem"], gemm, elementwise, spikes = snnmem_step(network, args.batch, args.steps)
            paths[network] = f"GEMM {gemm}, elementwise kernels {elementwise}; {spikes}"
            if dense:
                row["snnmem dense"], _, _, _ = snnmem_step(network, args.batch, args.steps, spikes=False)
                row["snnmem / dense"] = row["snnmem"] / row["snnmem dense"]
            if args.openblas:
                row["snnmem openblas"], _, _, _ = snnmem_step(network, args.batch, args.steps, gemm="openblas")
            if has_torch:
                result = python_step(args.python, [TORCH_SCRIPT, "--network", network, "--mode", "step", "--batch", str(args.batch),
                                                   "--steps", str(args.steps), "--warmup", str(WARMUP_STEPS)])
                row["pytorch"] = result["medianStepMs"]
                versions["torch"] = f"PyTorch {result['torch']}, {result['threads']} threads"
                row["snnmem / pytorch"] = row["snnmem"] / row["pytorch"]
            if has_sj:
                result = python_step(args.python, [SJ_SCRIPT, profile_path(network), "--batch", str(args.batch),
                                                   "--steps", str(args.steps), "--warmup", str(WARMUP_STEPS)])
                row["spikingjelly"] = result["medianStepMs"]
                versions["spikingjelly"] = f"SpikingJelly {result['spikingjelly']}"
                row["snnmem / spikingjelly"] = row["snnmem"] / row["spikingjelly"]
            rounds.append(row)
            print(f"| {r + 1} | {load:.2f} | {network} | " + " | ".join(f"{row[c]:.1f}" for c in columns) + " | " +
                  " | ".join(f"{row[c]:.2f}" for c in ratios) + " |", flush=True)

    medians = {}
    for network in networks:
        mine = [row for row in rounds if row["network"] == network]
        medians[network] = {key: statistics.median(row[key] for row in mine) for key in columns + ratios}
        spread = " | ".join(f"{medians[network][c]:.2f} ({min(row[c] for row in mine):.2f}-{max(row[c] for row in mine):.2f})"
                            for c in ratios)
        print(f"| median | | {network} | " + " | ".join(f"{medians[network][c]:.1f}" for c in columns) + " | " + spread + " |")
    for network in networks:
        print(f"snnmem {network}: {paths[network]}")
    if versions:
        print("; ".join(versions.values()) + ". 'pytorch': scripts/pytorch-step.py --mode step (the network per timestep, "
              "as snnmem); 'spikingjelly': scripts/spikingjelly-step.py (multi-step modules, each layer over T*B samples).")
    if dense:
        print("'snnmem dense': the same engine with every conv on the dense GEMM (SNNMEM_SPIKE_GEMM=off).")
    print("ratios: per round, snnmem's step / the other's; the median row gives each column's median and the rounds' "
          "ratios' median (their range in brackets).")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump({"processor": processor(), "versions": versions, "paths": paths, "rounds": rounds, "medians": medians},
                      f, indent=2)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
