#!/usr/bin/env bash
# Regenerates the PyTorch fixtures of the grouped/depthwise conv2d test profile
# (Tests/PlannerTests/Fixtures/pytorch/profiles/grouped-conv.yaml): bptt, sltt and checkpoint
# (gradients verified) at T=2/B=2 and T=4/B=4 on the CPU, as scripts/pytorch-fixtures.sh measures
# the bundled profiles; torch's default threads (the plan assumes 2: run it on a 2-core machine or
# plan with --cpu-threads). Usage: bash scripts/pytorch-grouped-conv-fixtures.sh   (about a minute on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-python.sh >/dev/null

OUT=Tests/PlannerTests/Fixtures/pytorch
PROFILE=$OUT/profiles/grouped-conv.yaml
export PYTHONWARNINGS=ignore
for point in 2:2 4:4; do
    T=${point%%:*}
    B=${point##*:}
    for strategy in bptt sltt checkpoint; do
        file="$OUT/grouped-conv-$strategy-T$T-B$B.json"
        extra=()
        [ "$strategy" = checkpoint ] && extra+=(--verify)
        PYTHONPATH="$PWD/python" .venv-torch/bin/python -m snnmem_torch measure "$PROFILE" --strategy "$strategy" \
            --timesteps "$T" --batch "$B" --stream-limit 300000 "${extra[@]}" -o "$file" >/dev/null
        echo "$file  $(stat -c %s "$file") bytes"
    done
done
