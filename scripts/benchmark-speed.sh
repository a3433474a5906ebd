#!/usr/bin/env bash
# The engine's speed, measured side by side: conv kernels against raw GEMMs on CIFARNet's shapes
# (engine-kernel-benchmark), then a whole CIFARNet training step (T=4, batch 16, bptt) on snnmem's
# AVX-512 GEMM, on OpenBLAS and in PyTorch eager, interleaved over rounds (benchmark-cifarnet-step.py).
#
# PyTorch is not a dependency of snnmem: this script installs it from PyPI into .venv-torch (ignored
# by git, several GiB with the CUDA wheels PyPI serves) only for the comparison. Set TORCH_PYTHON to
# use a Python that already has torch, or SKIP_TORCH=1 to measure snnmem alone.
#   bash scripts/benchmark-speed.sh [--rounds N] [--steps N] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
swift build -c release --product snnmem
swift build -c release --product engine-kernel-benchmark
.build/release/engine-kernel-benchmark
echo

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
python3 scripts/benchmark-cifarnet-step.py --python "$python" "$@"
