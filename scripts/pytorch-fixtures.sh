#!/usr/bin/env bash
# Regenerates the PyTorch measurement fixtures the Swift planner tests compare against:
# Tests/PlannerTests/Fixtures/pytorch/<profile>-<strategy>-T<T>-B<B>.json (schema
# snnmem-torch-measurement/1), for every bundled profile PyTorch + SpikingJelly can express, at
# two (T, B) points each, under bptt, sltt and checkpoint (default segment round(sqrt(T)),
# gradients verified). A file whose allocation stream would make it larger than 300 KB keeps
# the stream written compactly (events without spaces or null timesteps) when that fits, else it
# keeps the peak, its moment and the per-layer saved tensors and leaves the stream out.
#
# Mixed precision: for the profiles in MIXED_PROFILES also <profile>-<strategy>-T<T>-B<B>-<dtype>.json
# for dtype bfloat16 and float16 (snnmem-torch measure --dtype: a float32 model under
# torch.autocast, float16 with a GradScaler), at the same points.
#
# Usage: bash scripts/pytorch-fixtures.sh [PROFILE ...]     (default: all of them; ~25 min on 2 cores,
#                                                           float16 convolutions are slow on the CPU)
#        DTYPES="bfloat16 float16" bash scripts/pytorch-fixtures.sh cifarnet vgg11   (only those)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-python.sh >/dev/null

OUT=Tests/PlannerTests/Fixtures/pytorch
mkdir -p "$OUT"
# Reversible profiles (revsresnet21, revvgg13) are measured by pytorch-reversible-fixtures.sh and
# T-RevSNN (trevsnn-cifar) by pytorch-trevsnn-fixtures.sh, both called at the end.
CIFAR="cifarnet digits vgg11 vgg13 resnet19 spiking-unet spikformer-4-384"
IMAGENET="resnet18 sew-resnet34 spike-driven-transformer-8-512"
DVS="cifar10dvs"
# SHD's recurrent network (its recurrent layer carries two states across checkpoint segments).
SEQUENCE="shd-recurrent"
# Test profiles of single layer kinds (python/tests/profiles/ and Tests/PlannerTests/Fixtures/pytorch/profiles/):
# layer norm over maps and features, and over [C, N] tokens beside each neighbour the PyTorch layouts
# model with its transposed view (and at the ends of residual main paths); the adaptive LIF with a
# windowed conv1d; transposed convs (oneDNN's deconvolution on the CPU); grouped and depthwise conv2d.
# Torch's default threads: the plans assume 2, so run it on a 2-core machine (or plan with --cpu-threads).
LAYER_TESTS="layernorm layernorm-tokens layernorm-tokens-residual alif-conv1d convtranspose grouped-conv"
MIXED_PROFILES="cifarnet vgg11"
DTYPES=${DTYPES:-float32 bfloat16 float16}
PROFILES=("$@")
[ ${#PROFILES[@]} -gt 0 ] || PROFILES=($CIFAR $IMAGENET $DVS $SEQUENCE $LAYER_TESTS)

# A bundled profile, else a test profile of that name.
profile_file() {
    for dir in profiles python/tests/profiles "$OUT/profiles"; do
        if [ -f "$dir/$1.yaml" ]; then echo "$dir/$1.yaml"; return; fi
    done
    echo "no profile named $1 in profiles/, python/tests/profiles/ or $OUT/profiles/" >&2
    exit 1
}

points_for() {
    case " $IMAGENET $DVS " in
        *" $1 "*) echo "1:1 2:2"; return ;;   # T:B — 3x224x224 images or 2x128x128 event frames: keep the step small
    esac
    case "$1" in
        spiking-unet) echo "2:2 8:2" ;;      # its own T=8 (users report running out of memory there)
        *) echo "2:2 4:4" ;;
    esac
}

export PYTHONWARNINGS=ignore
for profile in "${PROFILES[@]}"; do
    for dtype in $DTYPES; do
        suffix=""
        if [ "$dtype" != float32 ]; then
            case " $MIXED_PROFILES " in *" $profile "*) ;; *) continue ;; esac
            suffix="-$dtype"
        fi
        for point in $(points_for "$profile"); do
            T=${point%%:*}
            B=${point##*:}
            strategies="bptt sltt checkpoint"
            for strategy in $strategies; do
                file="$OUT/$profile-$strategy-T$T-B$B$suffix.json"
                extra=(--dtype "$dtype")
                [ "$strategy" = checkpoint ] && extra+=(--verify)
                start=$(date +%s)
                .venv-torch/bin/snnmem-torch measure "$(profile_file "$profile")" --strategy "$strategy" \
                    --timesteps "$T" --batch "$B" --stream-limit 300000 "${extra[@]}" -o "$file" >/dev/null 2>/tmp/pytorch-fixtures.err \
                    || { cat /tmp/pytorch-fixtures.err >&2; exit 1; }
                echo "$file  $(( $(date +%s) - start )) s  $(stat -c %s "$file") bytes"
            done
        done
    done
done

# The reversible and T-RevSNN profiles have scripts of their own (their streams live in side files);
# with no profiles named, regenerate them too.
if [ $# -eq 0 ]; then bash scripts/pytorch-reversible-fixtures.sh; bash scripts/pytorch-trevsnn-fixtures.sh; fi
