#!/usr/bin/env bash
# The main job on a bundled profile: install what is missing, build in release mode, plan one
# training step under every strategy, find the largest batch that fits in 24 GiB, then train every
# applicable schedule side by side and hold each measurement against its prediction.
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
