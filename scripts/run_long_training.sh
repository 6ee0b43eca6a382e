#!/usr/bin/env bash
# The long CPU runs toward the released weights (docs/reproduction.md "The long runs"): the full recipe without L_sc,
# cosine learning rate to 1e-6, NIQE of the five sets every 1,000 iterations, a training state every 500.
#   cosine8k     8,000 iterations, EMA 0.999
#   variance4k   a best 1,000-iteration recipe, 4,000 iterations: EMA 0.99, darkened SICE positives as more
#                inputs, references resized whole, L_fr x10, whole-image brightness variance x20
#   variance100_4k   the same with the brightness variance at weight 100
# Usage:
#   scripts/run_long_training.sh RECIPE          train, or continue from the newest training state (--auto_resume)
#   scripts/run_long_training.sh RECIPE prune    keep only the newest training state and its checkpoint (committed)
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPE=${1:-}
STUDY=experiments/long_run_$RECIPE
variance() { ITERS=4000 RECIPE_SET=("train:ema_decay=0.99" "datasets:train:resize_references=true"
    "datasets:train:extra_inputs=[{dataroot: $STUDY/data/sice/positive, darken: {gamma: [1.5, 3.0], gain: [0.4, 0.9]}}]"
    "train:retention_opt:loss_weight=10"
    "train:semantic_opt={type: SemanticBrightnessLoss, loss_weight: $1, ce_weight: 0, whole_image: true}"); }
case "$RECIPE" in
    cosine8k) ITERS=8000 RECIPE_SET=("train:ema_decay=0.999") ;;
    variance4k) variance 20.0 ;;
    variance100_4k) variance 100.0 ;;
    *) echo "usage: $0 cosine8k|variance4k|variance100_4k [prune]" >&2; exit 2 ;;
esac
RUN=$STUDY/experiments/ablation_full_wo_Lsc
if [ "${2:-}" = prune ]; then
    newest=$(ls "$RUN/training_states" | sed -n 's/^\([0-9]*\)\.state$/\1/p' | sort -n | tail -1)
    [ -n "$newest" ] || { echo "no training state in $RUN/training_states" >&2; exit 1; }
    find "$RUN/training_states" -name '*.state' ! -name "$newest.state" -delete
    find "$RUN/models" -name 'net_g_*.pth' ! -name "net_g_$newest.pth" -delete  # net_g_latest: a copy of the newest
    echo "kept $RUN/training_states/$newest.state and $RUN/models/net_g_$newest.pth"
    exit 0
fi
[ -z "${2:-}" ] || { echo "usage: $0 $RECIPE [prune]" >&2; exit 2; }
ASSETS=$(realpath "${SCLLE_ASSETS:-../shared/assets}")
val_set() { echo "datasets:val_$1={name: $2, type: CheckedSingleImageDataset, dataroot_lq: $ASSETS/lle_testsets/$2, io_backend: {type: disk}}"; }
COMMON=("train:scheduler={type: CosineAnnealingRestartLR, periods: [$ITERS], restart_weights: [1], eta_min: 1.0e-6}"
        "logger:save_checkpoint_freq=500"
        "val={val_freq: 1000, save_img: false, tile: 512, metrics: {niqe: {type: calculate_niqe, crop_border: 0, better: lower}}}"
        "$(val_set 1 DICM)" "$(val_set 2 LIME)" "$(val_set 3 MEF)" "$(val_set 4 NPE)" "$(val_set 5 VV)")
exec "${PYTHON:-python}" scripts/run_ablation_study.py --runs full_wo_Lsc --jobs 1 --iters $ITERS --study_dir $STUDY \
    --set "${COMMON[@]}" "${RECIPE_SET[@]}"
