#!/usr/bin/env bash
# Regenerates the PyTorch measurements of the T-RevSNN profile (python/snnmem_torch/trevsnn.py,
# python/TREVSNN-NOTES.md): Tests/PlannerTests/Fixtures/pytorch/trevsnn-cifar-<strategy>-T<T>-B<B>.json
# at T=2,B=2 and T=4,B=2 and at the profile's own T=4,B=32, under bptt (plain autograd through the
# columns) and trevsnn (T-RevSNN's custom function; gradients verified against bptt's, the
# reconstruction error of every rebuilt state recorded). At B=2 the parameters (every column has its
# own) outweigh the activations and both strategies peak in Adam's step; B=32 peaks in backward,
# where the schedules differ. Also trev-mid (Tests/PlannerTests/Fixtures/pytorch/profiles/trev-mid.yaml:
# sigmoid surrogates, a 5x5 depthwise kernel, two blocks in a level, SGD) at its own T=3,B=8. Streams
# longer than a 300 KB fixture allows are moved to <file>.stream.json.gz next to it
# (python -m snnmem_torch.streamfile).
#
# Usage: bash scripts/pytorch-trevsnn-fixtures.sh   (~1 min on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-python.sh >/dev/null

OUT=Tests/PlannerTests/Fixtures/pytorch
mkdir -p "$OUT"

export PYTHONWARNINGS=ignore
# profile file:T:B
for run in profiles/trevsnn-cifar.yaml:2:2 profiles/trevsnn-cifar.yaml:4:2 profiles/trevsnn-cifar.yaml:4:32 \
           Tests/PlannerTests/Fixtures/pytorch/profiles/trev-mid.yaml:3:8; do
    IFS=: read -r profile_file T B <<< "$run"
    profile=$(basename "$profile_file" .yaml)
    for strategy in bptt trevsnn; do
        file="$OUT/$profile-$strategy-T$T-B$B.json"
        extra=()
        [ "$strategy" = trevsnn ] && extra+=(--verify)
        start=$(date +%s)
        rm -f "${file%.json}.stream.json.gz"
        .venv-torch/bin/snnmem-torch measure "$profile_file" --strategy "$strategy" \
            --timesteps "$T" --batch "$B" "${extra[@]}" -o "$file" >/dev/null 2>/tmp/pytorch-fixtures.err \
            || { cat /tmp/pytorch-fixtures.err >&2; exit 1; }
        .venv-torch/bin/python -m snnmem_torch.streamfile "$file" --limit 300000 >/dev/null
        echo "$file  $(( $(date +%s) - start )) s  $(stat -c %s "$file") bytes"
    done
done
