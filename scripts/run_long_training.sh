#!/usr/bin/env bash
# The long CPU run toward the released weights (docs/reproduction.md): the full recipe without L_sc, 8,000
# iterations, cosine learning rate, EMA 0.999, NIQE of the five sets every 1,000 iterations.
#   scripts/run_long_training.sh          train, or continue from the newest training state (BasicSR --auto_resume)
#   scripts/run_long_training.sh prune    keep only the newest training state and its checkpoint (what is committed)
set -euo pipefail
cd "$(dirname "$0")/.."
STUDY=experiments/long_run_cosine8k
RUN=$STUDY/experiments/ablation_full_wo_Lsc
ITERS=8000
if [ "${1:-}" = prune ]; then
    newest=$(ls "$RUN/training_states" | sed -n 's/^\([0-9]*\)\.state$/\1/p' | sort -n | tail -1)
    [ -n "$newest" ] || { echo "no training state in $RUN/training_states" >&2; exit 1; }
    find "$RUN/training_states" -name '*.state' ! -name "$newest.state" -delete
    find "$RUN/models" -name 'net_g_*.pth' ! -name "net_g_$newest.pth" -delete  # net_g_latest: a copy of the newest
    echo "kept $RUN/training_states/$newest.state and $RUN/models/net_g_$newest.pth"
    exit 0
fi
ASSETS=$(realpath "${SCLLE_ASSETS:-../shared/assets}")
val_set() { echo "datasets:val_$1={name: $2, type: CheckedSingleImageDataset, dataroot_lq: $ASSETS/lle_testsets/$2, io_backend: {type: disk}}"; }
exec "${PYTHON:-python}" scripts/run_ablation_study.py --runs full_wo_Lsc --jobs 1 --iters $ITERS --study_dir $STUDY \
    --set "train:scheduler={type: CosineAnnealingRestartLR, periods: [$ITERS], restart_weights: [1], eta_min: 1.0e-6}" \
          "train:ema_decay=0.999" "logger:save_checkpoint_freq=500" \
          "val={val_freq: 1000, save_img: false, tile: 512, metrics: {niqe: {type: calculate_niqe, crop_border: 0, better: lower}}}" \
          "$(val_set 1 DICM)" "$(val_set 2 LIME)" "$(val_set 3 MEF)" "$(val_set 4 NPE)" "$(val_set 5 VV)"
