#!/usr/bin/env bash
# The main job on a bundled profile: install what is missing, build in release mode, plan one
# training step under every strategy as PyTorch + SpikingJelly run it on a GPU, find the largest
# batch that fits a 24 GiB GPU, train every applicable schedule in snnmem's engine side by side
# and hold each measurement against its prediction, then measure the same step in PyTorch on this
# CPU and hold it against the pytorch-cpu plan.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh
profile="${1:-profiles/cifarnet.yaml}"
swift build -c release --product snnmem
snnmem=.build/release/snnmem
"$snnmem" plan "$profile" --strategy all
echo
"$snnmem" max-batch "$profile" --memory 24GiB --reserve 1GiB --strategy all
echo
"$snnmem" compare "$profile" --steps 2 --out reports/latest
echo
echo "report written to reports/latest (open reports/latest/report.html)"
echo
if [ "${SKIP_TORCH:-0}" != 1 ]; then
  name=$(basename "$profile" .yaml)
  if "$snnmem" plan "$profile" --runtime pytorch-cpu --strategy bptt --batch 2 --timesteps 2 >/dev/null 2>&1; then
    bash scripts/install-python.sh
    mkdir -p reports/latest-pytorch
    .venv-torch/bin/snnmem-torch measure "$profile" --strategy bptt --batch 2 --timesteps 2 -o "reports/latest-pytorch/$name-bptt.json" >/dev/null
    "$snnmem" report "reports/latest-pytorch/$name-bptt.json" --out reports/latest-pytorch/report
  else
    echo "$profile has layers PyTorch + SpikingJelly cannot run here; skipping the PyTorch measurement"
  fi
fi
