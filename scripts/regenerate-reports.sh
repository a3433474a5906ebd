#!/usr/bin/env bash
# Regenerates the committed example reports in reports/ from a bundled profile: the plan, the
# largest batches, the measured side-by-side comparison with its HTML timelines and Chrome
# trace, and the scaling plots over T and depth. Measured times differ from run to run.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product snnmem >/dev/null
snnmem=.build/release/snnmem
profile=profiles/cifarnet.yaml
write() {  # atomically: a half-written report never replaces a good one
  local target="$1"; shift
  "$@" > "$target.tmp" && mv "$target.tmp" "$target"
}
mkdir -p reports
write reports/cifarnet-plan.md "$snnmem" plan "$profile" --format markdown
write reports/cifarnet-plan.json "$snnmem" plan "$profile" --format json
write reports/cifarnet-max-batch.md "$snnmem" max-batch "$profile" --memory 24GiB --reserve 1GiB --format markdown
"$snnmem" compare "$profile" --steps 2 --out reports/cifarnet-compare > /dev/null
"$snnmem" sweep "$profile" --timesteps 1,2,4,8,16 --out reports/cifarnet-sweep-timesteps > /dev/null
"$snnmem" sweep profiles/revsresnet21.yaml --depth-scale 1,2,4 --out reports/revsresnet21-sweep-depth > /dev/null
echo "wrote reports/: cifarnet-plan.{md,json}, cifarnet-max-batch.md, cifarnet-compare/, cifarnet-sweep-timesteps/, revsresnet21-sweep-depth/"
