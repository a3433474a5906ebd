#!/usr/bin/env bash
# How the AVX2 SGEMM's tile and blocking were chosen: Sources/CGemm/snn_gemm_avx2.c compiled with
# each variant (MRxNR[:KC:MC:B_GROUP]) beside OpenBLAS (one thread, its OPENBLAS_CORETYPE as set),
# checked against a Double reference, then timed on the engine's conv GEMM shapes (thread CPU time,
# best of N), variants interleaved round by round. Needs an AVX2 processor; run short, e.g. under
# `chrt -f 50` (root) on a shared machine.
#   bash scripts/benchmarks/gemm-avx2-tiles.sh [ROUNDS] [VARIANT...]     e.g. 2 6x16 4x24 8x8 6x16:384:96:8
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-2}
shift || true
if [ $# -gt 0 ]; then variants=("$@"); else variants=(6x16 4x24 8x8); fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for v in "${variants[@]}"; do
  IFS=':' read -r tile kc mc group <<<"$v"
  flags=(-DSNN_AVX2_MR="${tile%x*}" -DSNN_AVX2_NR="${tile#*x}")
  [ -n "${kc:-}" ] && flags+=(-DSNN_AVX2_KC="$kc")
  [ -n "${mc:-}" ] && flags+=(-DSNN_AVX2_MC="$mc")
  [ -n "${group:-}" ] && flags+=(-DSNN_AVX2_B_GROUP="$group")
  clang -O2 "${flags[@]}" -ISources/CGemm/include -o "$out/$v" scripts/benchmarks/gemm-avx2-tiles.c Sources/CGemm/snn_gemm_avx2.c Sources/CGemm/snn_thread_buffers.c \
    -lopenblas -lpthread -lm
done
echo "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}, load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for v in "${variants[@]}"; do OPENBLAS_NUM_THREADS=1 "$out/$v" 7 | sed "s/^/round $round $v: /"; done
done
