#!/usr/bin/env bash
# Regenerates the PyTorch measurements of the reversible profiles (RevSNN stages, see
# python/snnmem_torch/reversible.py and python/REVERSIBLE-NOTES.md):
# Tests/PlannerTests/Fixtures/pytorch/<profile>-<strategy>-T<T>-B<B>.json for revsresnet21 and
# revvgg13 at T=2,B=2 and T=4,B=2, under bptt (plain autograd through the stages) and revsnn (the
# custom function; gradients verified against bptt's, reconstruction error recorded). Their streams
# are far longer than a 300 KB fixture allows, so each one is moved to
# <profile>-<strategy>-T<T>-B<B>.stream.json.gz next to it (python -m snnmem_torch.streamfile);
# `python -m snnmem_torch.layout FILE.json` reads it from there.
#
# Usage: bash scripts/pytorch-reversible-fixtures.sh [PROFILE ...]   (default both; ~3 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-python.sh >/dev/null

OUT=Tests/PlannerTests/Fixtures/pytorch
mkdir -p "$OUT"
PROFILES=("$@")
[ ${#PROFILES[@]} -gt 0 ] || PROFILES=(revsresnet21 revvgg13)

export PYTHONWARNINGS=ignore
for profile in "${PROFILES[@]}"; do
    for point in 2:2 4:2; do
        T=${point%%:*}
        B=${point##*:}
        for strategy in bptt revsnn; do
            file="$OUT/$profile-$strategy-T$T-B$B.json"
            extra=()
            [ "$strategy" = revsnn ] && extra+=(--verify)
            start=$(date +%s)
            rm -f "${file%.json}.stream.json.gz"
            .venv-torch/bin/snnmem-torch measure "profiles/$profile.yaml" --strategy "$strategy" \
                --timesteps "$T" --batch "$B" "${extra[@]}" -o "$file" >/dev/null 2>/tmp/pytorch-fixtures.err \
                || { cat /tmp/pytorch-fixtures.err >&2; exit 1; }
            .venv-torch/bin/python -m snnmem_torch.streamfile "$file" --limit 300000 >/dev/null
            echo "$file  $(( $(date +%s) - start )) s  $(stat -c %s "$file") bytes"
        done
    done
done
