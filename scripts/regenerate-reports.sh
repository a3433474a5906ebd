#!/usr/bin/env bash
# Regenerates the committed example reports in reports/ from a bundled profile.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product snnmem >/dev/null
snnmem=.build/release/snnmem
profile=profiles/cifarnet.yaml
write() {  # atomically: a half-written report never replaces a good one
  local target="$1"; shift
  "$@" > "$target.tmp" && mv "$target.tmp" "$target"
}
write reports/cifarnet-plan.md "$snnmem" plan "$profile" --format markdown
write reports/cifarnet-plan.json "$snnmem" plan "$profile" --format json
write reports/cifarnet-max-batch.md "$snnmem" max-batch "$profile" --memory 24GiB --reserve 1GiB --format markdown
echo "wrote reports/cifarnet-plan.md, reports/cifarnet-plan.json, reports/cifarnet-max-batch.md"
