#!/usr/bin/env bash
# Regenerates the mixed-precision PyTorch fixtures of the newer layers (adaptive LIF, recurrent, layer norm)
# under bptt, sltt and checkpoint (gradients verified) at T=2/B=2, and at T=4/B=4 for the adaptive LIF and
# layer norm (the recurrent layer's backward script is coarser at larger points, python/LAYOUT-NOTES.md §14):
#   alif-flat, layernorm-flat, recurrent-hidden: float16 (linear layers only: a float16 convolution on a CPU
#     without AVX512-FP16 is thnn's slow conv2d, not modelled; a wide bfloat16 linear layer books oneDNN
#     matmul scratchpads, not modelled)
#   alif-conv, layernorm (python/tests/profiles): bfloat16
#   shd-recurrent: float16 and bfloat16
# Usage: bash scripts/pytorch-autocast-fixtures.sh   (about three minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-python.sh >/dev/null

OUT=Tests/PlannerTests/Fixtures/pytorch
export PYTHONWARNINGS=ignore
measure() {  # profile-file name dtype points(T:B ...)
    for point in $4; do
        T=${point%%:*}
        B=${point##*:}
        for strategy in bptt sltt checkpoint; do
            file="$OUT/$2-$strategy-T$T-B$B-$3.json"
            extra=()
            [ "$strategy" = checkpoint ] && extra+=(--verify)
            .venv-torch/bin/snnmem-torch measure "$1" --strategy "$strategy" --timesteps "$T" --batch "$B" --dtype "$3" \
                --stream-limit 300000 "${extra[@]}" -o "$file" >/dev/null
            echo "$file  $(stat -c %s "$file") bytes"
        done
    done
}
measure "$OUT/profiles/alif-flat.yaml" alif-flat float16 "2:2 4:4"
measure "$OUT/profiles/layernorm-flat.yaml" layernorm-flat float16 "2:2 4:4"
measure "$OUT/profiles/recurrent-hidden.yaml" recurrent-hidden float16 "2:2"
measure "$OUT/profiles/alif-conv.yaml" alif-conv bfloat16 "2:2 4:4"
measure python/tests/profiles/layernorm.yaml layernorm bfloat16 "2:2 4:4"
for dtype in float16 bfloat16; do measure profiles/shd-recurrent.yaml shd-recurrent "$dtype" "2:2"; done
