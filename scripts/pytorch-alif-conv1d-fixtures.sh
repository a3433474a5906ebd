#!/usr/bin/env bash
# Regenerates the PyTorch fixtures of the adaptive-LIF / windowed-conv1d test profile
# (Tests/PlannerTests/Fixtures/pytorch/profiles/alif-conv1d.yaml): bptt, sltt and checkpoint
# (gradients verified) at T=2/B=2 and T=4/B=4, as scripts/pytorch-fixtures.sh measures the bundled
# profiles. Usage: bash scripts/pytorch-alif-conv1d-fixtures.sh   (about a minute on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-python.sh >/dev/null

OUT=Tests/PlannerTests/Fixtures/pytorch
PROFILE=$OUT/profiles/alif-conv1d.yaml
export PYTHONWARNINGS=ignore
for point in 2:2 4:4; do
    T=${point%%:*}
    B=${point##*:}
    for strategy in bptt sltt checkpoint; do
        file="$OUT/alif-conv1d-$strategy-T$T-B$B.json"
        extra=()
        [ "$strategy" = checkpoint ] && extra+=(--verify)
        .venv-torch/bin/snnmem-torch measure "$PROFILE" --strategy "$strategy" --timesteps "$T" --batch "$B" \
            --stream-limit 300000 "${extra[@]}" -o "$file" >/dev/null
        echo "$file  $(stat -c %s "$file") bytes"
    done
done
