#!/bin/sh
# run_suite.sh: the measurements behind docs/performance.md, in one go, on
# one device, for both GEMM engines: stacl's own kernels (the default on CPU
# devices) and CLBlast (STACL_GEMM=clblast: with its own parameters and with a
# tuned file). GEMM shapes against OpenBLAS (as Debian picks it, and with
# OPENBLAS_CORETYPE), whole ViT-B/16 forwards (T frames) on each engine
# alternating with PyTorch CPU on the same threads (Debian's OpenBLAS, and
# with OPENBLAS_CORETYPE), ST-Adapter training steps (ViT-B/16, T frames, one
# clip per step) and an SVG summary. Every number lands in OUT as JSON.
#
#   sh bench/run_suite.sh [BUILD_DIR] [OUT_DIR] [TUNE_FILE]
#
# Env: FRAMES (8), GEMM_RUNS (5), FWD_RUNS (3), THREADS (2: PyTorch threads,
# and OpenBLAS's via OPENBLAS_NUM_THREADS), CORETYPE (SkylakeX: the second
# OpenBLAS baseline; empty to skip), TRAIN_RUNS (2: timed training steps,
# plus a warm-up), TRAIN_ADAPTERS ("12x384 24x384"; empty to skip training),
# CLBLAST_OFF_FORWARD (1: also a forward on CLBlast's own parameters, about
# 2 minutes; 0 to skip). Takes 10-20 minutes on a 2-core VM.
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

# Engines: stacl's kernels; CLBlast with its own parameters; CLBlast tuned.
stacl_run() { # PROGRAM (gemm or forward), LABEL, then env assignments
    prog=$1 label=$2
    shift 2
    runs=$GEMM_RUNS
    [ "$prog" = forward ] && runs=$FWD_RUNS
    env "$@" "$BUILD/bench/stacl-bench-$prog" --frames "$FRAMES" --runs "$runs" \
        --json "$OUT/$prog-$label.json" | tee "$OUT/$prog-$label.txt"
}
stacl_run gemm stacl STACL_GEMM=stacl
stacl_run gemm clblast-off STACL_GEMM=clblast STACL_TUNE=off
stacl_run gemm clblast-tuned STACL_GEMM=clblast STACL_TUNE="$TUNED"
if [ -n "$CORETYPE" ]; then
    stacl_run gemm "stacl-$CORETYPE" STACL_GEMM=stacl OPENBLAS_CORETYPE="$CORETYPE"
fi

# Whole forwards, each followed by PyTorch so that load lands on both.
torch_run() { # LABEL, then env assignments
    label=$1
    shift
    env "$@" /usr/bin/python3 bench/torch_forward.py --frames "$FRAMES" --runs "$FWD_RUNS" --threads "$THREADS" \
        --json "$OUT/torch-$label.json" | tee "$OUT/torch-$label.txt"
}
stacl_run forward stacl STACL_GEMM=stacl
torch_run after-stacl
if [ -n "$CORETYPE" ]; then torch_run "$CORETYPE-after-stacl" OPENBLAS_CORETYPE="$CORETYPE"; fi
stacl_run forward clblast-tuned STACL_GEMM=clblast STACL_TUNE="$TUNED"
torch_run after-clblast
if [ "${CLBLAST_OFF_FORWARD:-1}" = 1 ]; then stacl_run forward clblast-off STACL_GEMM=clblast STACL_TUNE=off; fi

# Training steps: forward + backward + AdamW of one 8-frame clip with
# ST-Adapters; the adapters' share of FLOPs and of device time.
TRAIN_PLOT=
for ad in $TRAIN_ADAPTERS; do
    "$BUILD/bench/stacl-bench-train" --preset vit-b16 --adapters "$ad" --frames "$FRAMES" \
        --runs "$TRAIN_RUNS" --json "$OUT/train-$ad.json" | tee "$OUT/train-$ad.txt"
    TRAIN_PLOT="$TRAIN_PLOT $ad=$OUT/train-$ad.json"
done
uptime | tee "$OUT/load-end.txt"

TORCH_FILES="$OUT/torch-after-stacl.json,$OUT/torch-after-clblast.json"
python3 bench/plot_results.py --gemm clblast-off="$OUT/gemm-clblast-off.json" \
    clblast-tuned="$OUT/gemm-clblast-tuned.json" stacl="$OUT/gemm-stacl.json" \
    --blas Debian-default="$OUT/gemm-stacl.json" \
    $( [ -n "$CORETYPE" ] && echo "$CORETYPE=$OUT/gemm-stacl-$CORETYPE.json" ) \
    --forward $( [ "${CLBLAST_OFF_FORWARD:-1}" = 1 ] && echo "clblast-off=$OUT/forward-clblast-off.json" ) \
    clblast-tuned="$OUT/forward-clblast-tuned.json" stacl="$OUT/forward-stacl.json" \
    --torch "1.13, $THREADS threads=$TORCH_FILES" \
    $( [ -n "$CORETYPE" ] && echo "1.13 $CORETYPE=$OUT/torch-$CORETYPE-after-stacl.json" ) \
    $( [ -n "$TRAIN_PLOT" ] && echo "--train $TRAIN_PLOT" ) --out "$OUT/summary.svg"
echo "wrote $OUT"
