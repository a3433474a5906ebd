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
# (busy step / quiet step) and snnmem's busy step against PyTorch's, with the processor, the GEMM
# snnmem ran on and how many conv forwards took its spike products (SNNMEM_SPIKE_GEMM=off: none).
# Its loop is one shell process; the scheduler places it. Other load on the machine skews both sides alike only because
# the four runs of a round follow each other: read the load average printed with each round.
#
# PyTorch is not a dependency of snnmem: this script installs it from PyPI into .venv-torch (ignored
# by git, several GiB with the CUDA wheels PyPI serves) only for the comparison. Set TORCH_PYTHON to
# use a Python that already has torch, or SKIP_TORCH=1 to measure snnmem alone. SNNMEM_BIN runs
# another snnmem binary (one built elsewhere) instead of building .build/release/snnmem.
#   bash scripts/benchmark-speed.sh [--rounds N] [--steps N] [--openblas] [--networks cifarnet,vgg11] [--json FILE]
#   bash scripts/benchmark-speed.sh --busy-core [--rounds N] [--steps N]   (SNNMEM_GEMM=openblas for OpenBLAS)
#
# --planner measures only the planner: the whole `snnmem check` of every bundled profile on every
# runtime and `snnmem plan profiles/vgg11.yaml`, each as one process (wall time, median of
# PLANNER_RUNS runs, 11 by default), then check's work in one process part by part
# (planner-benchmark). It also runs first in the default mode; it needs no PyTorch. On a shared
# machine other jobs' load swamps a 50 ms process: PLANNER_REALTIME=1 (root) runs the timed
# commands under `chrt -f 50`, ahead of every ordinary process, which stands for a quiet machine,
# and PLANNER_CPUS=0 pins them to one core (taskset), to see what parallelism contributes.
#   bash scripts/benchmark-speed.sh --planner
#
# --isa avx2 (or baseline, avx512) measures as a processor with nothing above that level would run:
# snnmem through SNNMEM_ISA (its GEMM and elementwise kernels), PyTorch through ATEN_CPU_CAPABILITY
# (ATen's own kernels), ONEDNN_MAX_CPU_ISA (oneDNN's convolutions, which ATEN_CPU_CAPABILITY leaves
# at AVX-512) and MKL_ENABLE_INSTRUCTIONS (its GEMMs). Combine with --openblas to see snnmem's AVX2
# GEMM against OpenBLAS's Haswell kernels in the same rounds.
#   bash scripts/benchmark-speed.sh --isa avx2 --openblas [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."

busy_core=0
planner_only=0
isa=
rounds=5
steps=10
passed=()
while [ $# -gt 0 ]; do
  case "$1" in
    --busy-core) busy_core=1 ;;
    --planner) planner_only=1 ;;
    --isa) isa="$2"; shift ;;
    --rounds) rounds="$2"; passed+=("$1" "$2"); shift ;;
    --steps) steps="$2"; passed+=("$1" "$2"); shift ;;
    *) passed+=("$1") ;;
  esac
  shift
done

# ---- --isa LEVEL: every side limited to LEVEL (the lowest level each PyTorch library offers for baseline) ----
if [ -n "$isa" ]; then
  case "$isa" in
    avx512) aten=avx512 onednn=AVX512_CORE mkl=AVX512 ;;
    avx2) aten=avx2 onednn=AVX2 mkl=AVX2 ;;
    baseline) aten=default onednn=SSE41 mkl=SSE4_2 ;;
    *) echo "error: --isa $isa: use avx512, avx2 or baseline" >&2; exit 2 ;;
  esac
  export SNNMEM_ISA="$isa" ATEN_CPU_CAPABILITY="$aten" ONEDNN_MAX_CPU_ISA="$onednn" MKL_ENABLE_INSTRUCTIONS="$mkl"
  echo "forced: SNNMEM_ISA=$SNNMEM_ISA ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA MKL_ENABLE_INSTRUCTIONS=$MKL_ENABLE_INSTRUCTIONS"
fi
# ---- end of --isa ----

source scripts/install-deps.sh
if [ -z "${SNNMEM_BIN:-}" ]; then
  swift build -c release --product snnmem
  snnmem=.build/release/snnmem
else
  snnmem="$SNNMEM_BIN"
fi

# ---- Planner speed: check and plan as whole processes (kept apart from the engine's step parts) ----
planner_speed() {
  swift build -c release --product planner-benchmark
  local runs=${PLANNER_RUNS:-11}
  local field='s/^[^:]*: *//'
  echo "planner: $(grep -m1 '^model name' /proc/cpuinfo | sed "$field") (family $(grep -m1 '^cpu family' /proc/cpuinfo | sed "$field"),"\
" model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | sed "$field")), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  # A failed or failing check stops the measurement: it must time the real gate.
  "$snnmem" check profiles/*.yaml --budget 24GiB --runtime all --baseline baselines/memory.json --fail-on-new --format markdown >/dev/null
  local launcher=()
  if [ "${PLANNER_REALTIME:-0}" = 1 ]; then launcher+=(chrt -f 50); fi
  if [ -n "${PLANNER_CPUS:-}" ]; then launcher+=(taskset -c "$PLANNER_CPUS"); fi
  echo "timed as: ${launcher[*]:-(plain processes)}"
  "${launcher[@]}" python3 - "$snnmem" "$runs" <<'PLANNER'
import glob, resource, statistics, subprocess, sys, time
snnmem, runs = sys.argv[1], int(sys.argv[2])
commands = {
    "check (every bundled profile, --runtime all)": [snnmem, "check", *sorted(glob.glob("profiles/*.yaml")), "--budget", "24GiB",
        "--runtime", "all", "--baseline", "baselines/memory.json", "--fail-on-new", "--format", "markdown"],
    "plan profiles/vgg11.yaml --strategy all": [snnmem, "plan", "profiles/vgg11.yaml", "--strategy", "all"],
}
wall = {name: [] for name in commands}
cpu = {name: [] for name in commands}
for _ in range(runs):  # interleaved, so that a change of load touches both alike
    for name, command in commands.items():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        wall[name].append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu[name].append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
print(f"| command | wall ms, median of {runs} | range | CPU ms (user + system), median |")
print("|---|---|---|---|")
for name in commands:
    w = wall[name]
    print(f"| {name} | {statistics.median(w):.1f} | {min(w):.1f}-{max(w):.1f} | {statistics.median(cpu[name]):.1f} |")
PLANNER
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); where check's time goes, in one process on one thread:"
  "${launcher[@]}" .build/release/planner-benchmark profiles 5 --check-only
}
if [ "$planner_only" = 1 ]; then planner_speed; exit; fi
if [ "$busy_core" = 0 ]; then planner_speed; echo; fi
# ---- end of planner speed ----

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
s = r["spikeProducts"]
spikes = "spike-products-off" if not s["enabled"] else "spike-products-in-%d/%d-forwards" % (s["forwardSparseCalls"], s["forwardCalls"])
print("%.1f %s,%s" % (statistics.median(r["stepMs"][int(sys.argv[1]):]), r["gemm"], spikes))
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
