#!/usr/bin/env bash
# The engine's speed, measured side by side: conv kernels against raw GEMMs on CIFARNet's shapes
# (engine-kernel-benchmark), then whole CIFARNet and VGG-11 training steps (T=4, batch 16, bptt) in
# snnmem (the GEMM it prefers here; --openblas adds OpenBLAS), in the pure-PyTorch eager script and in
# SpikingJelly's multi-step modules, interleaved over rounds, with the processor, the GEMM and
# elementwise kernels snnmem ran on, and the ratios (benchmark-engine-step.py).
#
# --busy-core measures instead how the steps hold up when another process keeps one core busy: each
# round runs snnmem and PyTorch (scripts/pytorch-step.py) quietly, then again beside a CPU-bound loop
# this script starts and stops by its PID, for CIFARNet and VGG-11, and reports each one's slowdown
# (busy step / quiet step) and snnmem's busy step against PyTorch's, with the processor and the GEMM
# snnmem ran on. Its loop is one shell
# process; the scheduler places it. Other load on the machine skews both sides alike only because
# the four runs of a round follow each other: read the load average printed with each round.
#
# PyTorch is not a dependency of snnmem: this script installs it from PyPI into .venv-torch (ignored
# by git, several GiB with the CUDA wheels PyPI serves) only for the comparison. Set TORCH_PYTHON to
# use a Python that already has torch, or SKIP_TORCH=1 to measure snnmem alone. SNNMEM_BIN runs
# another snnmem binary (one built elsewhere) instead of building .build/release/snnmem.
#   bash scripts/benchmark-speed.sh [--rounds N] [--steps N] [--openblas] [--networks cifarnet,vgg11] [--json FILE]
#   bash scripts/benchmark-speed.sh --busy-core [--rounds N] [--steps N]   (SNNMEM_GEMM=openblas for OpenBLAS)
set -euo pipefail
cd "$(dirname "$0")/.."

busy_core=0
rounds=5
steps=10
passed=()
while [ $# -gt 0 ]; do
  case "$1" in
    --busy-core) busy_core=1 ;;
    --rounds) rounds="$2"; passed+=("$1" "$2"); shift ;;
    --steps) steps="$2"; passed+=("$1" "$2"); shift ;;
    *) passed+=("$1") ;;
  esac
  shift
done

source scripts/install-deps.sh
if [ -z "${SNNMEM_BIN:-}" ]; then
  swift build -c release --product snnmem
  snnmem=.build/release/snnmem
else
  snnmem="$SNNMEM_BIN"
fi

python=python3
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  if [ -n "${TORCH_PYTHON:-}" ]; then
    python="$TORCH_PYTHON"
  else
    if [ ! -x .venv-torch/bin/python ] || ! .venv-torch/bin/python -c "import torch" 2>/dev/null; then
      echo "installing PyTorch ${TORCH_VERSION:-2.15.0} into .venv-torch for the comparison"
      python3 -m venv .venv-torch
      .venv-torch/bin/pip install -q "torch==${TORCH_VERSION:-2.15.0}" numpy
    fi
    python=.venv-torch/bin/python
  fi
fi

if [ "$busy_core" = 0 ]; then
  swift build -c release --product engine-kernel-benchmark
  .build/release/engine-kernel-benchmark
  echo
  python3 scripts/benchmark-engine-step.py --python "$python" "${passed[@]}"
  exit
fi

# --busy-core. Steps run and not measured before each run's median, as benchmark-engine-step.py
# does: the first steps map pages and warm caches.
warmup=3
busy_pid=
stop_busy() {
  if [ -n "$busy_pid" ]; then
    kill "$busy_pid" 2>/dev/null || true
    wait "$busy_pid" 2>/dev/null || true
    busy_pid=
  fi
}
trap stop_busy EXIT INT TERM
start_busy() {
  ( while :; do :; done ) &
  busy_pid=$!
  sleep 0.5  # let the scheduler settle the loop on a core before the measured run starts
}

# The median step (ms) of one snnmem run and the GEMM it ran on; fails if its measured peak is not
# the predicted one.
read -r -d '' snnmem_median <<'EOF' || true
import json, statistics, sys
r = json.load(sys.stdin)
if r["predictedPeakBytes"] != r["measuredPeakBytes"]:
    sys.exit("snnmem: measured peak %d != predicted %d" % (r["measuredPeakBytes"], r["predictedPeakBytes"]))
print("%.1f %s" % (statistics.median(r["stepMs"][int(sys.argv[1]):]), r["gemm"]))
EOF
snnmem_step() {  # network
  "$snnmem" run "profiles/$1.yaml" --strategy bptt --batch 16 --steps $((steps + warmup)) --format json |
    python3 -c "$snnmem_median" "$warmup"
}
torch_step() {  # network
  "$python" scripts/pytorch-step.py --network "$1" --mode step --steps "$steps" --warmup "$warmup" | tail -1 |
    python3 -c 'import json, sys; r = json.load(sys.stdin); print(r["medianStepMs"], r["torch"], r["threads"])'
}

has_torch=0
if [ "${SKIP_TORCH:-0}" != 1 ] && "$python" -c "import torch" 2>/dev/null; then has_torch=1; fi
# The model name alone can be generic ("AMD EPYC" on these machines): family and model tell the
# generation (family 25 is Zen 3/4, 26 Zen 5).
cpu_field() { grep -m1 "^$1[[:space:]]*:" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; }
processor="$(cpu_field 'model name') (family $(cpu_field 'cpu family'), model $(cpu_field model))"
isa=$(grep -m1 -o -w 'avx512f' /proc/cpuinfo || grep -m1 -o -w 'avx2' /proc/cpuinfo || uname -m)
echo "processor: $processor, $(nproc) cores, ${isa}; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"
echo "bptt steps (T=4, batch 16), median of $steps steps after $warmup; $rounds rounds, each quiet then beside a busy loop"
results=$(mktemp)
echo "| round | load | network | snnmem quiet ms | snnmem busy ms | snnmem slowdown | pytorch quiet ms | pytorch busy ms | pytorch slowdown | busy snnmem / pytorch |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$rounds"); do
  for network in cifarnet vgg11; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    # (Assigned before it is split, so that a failed run stops the script under set -e.)
    out=$(snnmem_step "$network"); read -r snnmem_quiet gemm <<<"$out"
    torch_quiet=- torch_busy=- torch_version=- torch_threads=-
    if [ "$has_torch" = 1 ]; then out=$(torch_step "$network"); read -r torch_quiet torch_version torch_threads <<<"$out"; fi
    start_busy
    out=$(snnmem_step "$network"); read -r snnmem_busy _ <<<"$out"
    if [ "$has_torch" = 1 ]; then out=$(torch_step "$network"); read -r torch_busy _ _ <<<"$out"; fi
    stop_busy
    echo "$round $load $network $snnmem_quiet $snnmem_busy $torch_quiet $torch_busy" >>"$results"
    python3 -c '
import sys
r, load, net, sq, sb, tq, tb = sys.argv[1:]
ratio = lambda a, b: f"{float(a) / float(b):.2f}" if "-" not in (a, b) else "-"
print(f"| {r} | {load} | {net} | {sq} | {sb} | {ratio(sb, sq)} | {tq} | {tb} | {ratio(tb, tq)} | {ratio(sb, tb)} |")' \
      "$round" "$load" "$network" "$snnmem_quiet" "$snnmem_busy" "$torch_quiet" "$torch_busy"
  done
done
python3 - "$results" <<'EOF'
import statistics, sys
all_rows = [line.split() for line in open(sys.argv[1])]
for network in dict.fromkeys(row[2] for row in all_rows):
    rows = [row for row in all_rows if row[2] == network]
    def column(i):
        return [float(row[i]) for row in rows] if rows[0][i] != "-" else None
    sq, sb, tq, tb = column(3), column(4), column(5), column(6)
    def cells(quiet, busy):
        if quiet is None:
            return "- | - | -"
        slowdowns = [b / q for q, b in zip(quiet, busy)]
        return (f"{statistics.median(quiet):.1f} | {statistics.median(busy):.1f} | {statistics.median(slowdowns):.2f} "
                f"({min(slowdowns):.2f}-{max(slowdowns):.2f})")
    busy_ratio = f"{statistics.median(s / t for s, t in zip(sb, tb)):.2f}" if tb else "-"
    print(f"| median | | {network} | {cells(sq, sb)} | {cells(tq, tb)} | {busy_ratio} |")
EOF
rm -f "$results"
if [ "$has_torch" = 1 ]; then
  echo "snnmem GEMM: $gemm; PyTorch $torch_version eager, $torch_threads threads (scripts/pytorch-step.py --mode step)."
else
  echo "snnmem GEMM: $gemm; PyTorch not measured (SKIP_TORCH=1 or no torch in $python)."
fi
echo "slowdown: busy step / quiet step within a round; the median rows give the median of each column and of the rounds' slowdowns (their range in brackets), and of the rounds' busy snnmem / busy PyTorch."
