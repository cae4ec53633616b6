#!/bin/sh
# run_suite.sh: the measurements behind docs/performance.md, in one go, on
# one device: GEMM shapes (CLBlast defaults, stacl's builtin set, a tuned
# file) against OpenBLAS (as Debian picks it, and with OPENBLAS_CORETYPE),
# whole ViT-B/16 forwards (T frames) with the same three sets, PyTorch CPU on
# the same threads, ST-Adapter training steps (ViT-B/16, T frames, one clip
# per step; issue 5) and an SVG summary. Every number lands in OUT as JSON.
#
#   sh bench/run_suite.sh [BUILD_DIR] [OUT_DIR] [TUNE_FILE]
#
# Env: FRAMES (8), GEMM_RUNS (5), FWD_RUNS (3), THREADS (2: PyTorch threads,
# and OpenBLAS's via OPENBLAS_NUM_THREADS), CORETYPE (SkylakeX: the second
# OpenBLAS baseline; empty to skip), TRAIN_RUNS (2: timed training steps,
# plus a warm-up), TRAIN_ADAPTERS ("12x384 24x384"; empty to skip training).
# Takes 15-30 minutes on a 2-core VM, plus 2-5 for the training steps (a
# ViT-B/16 step of 8 frames: 15-30 s with 12x384, 28-36 s with 24x384).
set -eu
BUILD=${1:-build}
OUT=${2:-bench/results}
TUNED=${3:-$OUT/tune-pocl-cpu.json}
FRAMES=${FRAMES:-8}
GEMM_RUNS=${GEMM_RUNS:-5}
FWD_RUNS=${FWD_RUNS:-3}
THREADS=${THREADS:-2}
CORETYPE=${CORETYPE-SkylakeX}
TRAIN_RUNS=${TRAIN_RUNS:-2}
TRAIN_ADAPTERS=${TRAIN_ADAPTERS-12x384 24x384}
export OPENBLAS_NUM_THREADS=$THREADS
mkdir -p "$OUT"
uptime | tee "$OUT/load-start.txt"

# Sets: CLBlast's own parameters, the builtin set, the tuned file.
for set in off builtin tuned; do
    case $set in tuned) val=$TUNED ;; *) val=$set ;; esac
    STACL_TUNE=$val "$BUILD/bench/stacl-bench-gemm" --frames "$FRAMES" --runs "$GEMM_RUNS" \
        --json "$OUT/gemm-$set.json" | tee "$OUT/gemm-$set.txt"
done
if [ -n "$CORETYPE" ]; then
    OPENBLAS_CORETYPE=$CORETYPE STACL_TUNE=$TUNED "$BUILD/bench/stacl-bench-gemm" --frames "$FRAMES" \
        --runs "$GEMM_RUNS" --json "$OUT/gemm-tuned-$CORETYPE.json" | tee "$OUT/gemm-tuned-$CORETYPE.txt"
fi

# Whole forwards, alternating stacl and PyTorch so that load lands on both.
for set in tuned off; do
    case $set in tuned) val=$TUNED ;; *) val=$set ;; esac
    STACL_TUNE=$val "$BUILD/bench/stacl-bench-forward" --frames "$FRAMES" --runs "$FWD_RUNS" \
        --json "$OUT/forward-$set.json" | tee "$OUT/forward-$set.txt"
    /usr/bin/python3 bench/torch_forward.py --frames "$FRAMES" --runs "$FWD_RUNS" --threads "$THREADS" \
        --json "$OUT/torch-$set-neighbour.json" | tee "$OUT/torch-$set-neighbour.txt"
done

# Training steps: forward + backward + AdamW of one 8-frame clip with
# ST-Adapters; the adapters' share of FLOPs and of device time.
TRAIN_PLOT=
for ad in $TRAIN_ADAPTERS; do
    STACL_TUNE=$TUNED "$BUILD/bench/stacl-bench-train" --preset vit-b16 --adapters "$ad" --frames "$FRAMES" \
        --runs "$TRAIN_RUNS" --json "$OUT/train-$ad.json" | tee "$OUT/train-$ad.txt"
    TRAIN_PLOT="$TRAIN_PLOT $ad=$OUT/train-$ad.json"
done
uptime | tee "$OUT/load-end.txt"

python3 bench/plot_results.py --gemm off="$OUT/gemm-off.json" builtin="$OUT/gemm-builtin.json" \
    tuned="$OUT/gemm-tuned.json" --blas Debian-default="$OUT/gemm-tuned.json" \
    $( [ -n "$CORETYPE" ] && echo "$CORETYPE=$OUT/gemm-tuned-$CORETYPE.json" ) \
    --forward off="$OUT/forward-off.json" tuned="$OUT/forward-tuned.json" \
    --torch "1.13, $THREADS threads=$OUT/torch-tuned-neighbour.json" \
    $( [ -n "$TRAIN_PLOT" ] && echo "--train $TRAIN_PLOT" ) --out "$OUT/summary.svg"
echo "wrote $OUT"
