#!/usr/bin/env bash
# The long CPU run toward the released weights (see docs/reproduction.md): the full recipe without L_sc, 8,000
# iterations, cosine learning rate, EMA 0.999, NIQE of the five sets every 1,000 iterations; resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS=$(realpath "${SCLLE_ASSETS:-../shared/assets}")
ITERS=8000
val_set() { echo "datasets:val_$1={name: $2, type: CheckedSingleImageDataset, dataroot_lq: $ASSETS/lle_testsets/$2, io_backend: {type: disk}}"; }
exec "${PYTHON:-python}" scripts/run_ablation_study.py --runs full_wo_Lsc --jobs 1 --iters $ITERS \
    --study_dir experiments/long_run_cosine8k \
    --set "train:scheduler={type: CosineAnnealingRestartLR, periods: [$ITERS], restart_weights: [1], eta_min: 1.0e-6}" \
          "train:ema_decay=0.999" "logger:save_checkpoint_freq=500" \
          "val={val_freq: 1000, save_img: false, tile: 512, metrics: {niqe: {type: calculate_niqe, crop_border: 0, better: lower}}}" \
          "$(val_set 1 DICM)" "$(val_set 2 LIME)" "$(val_set 3 MEF)" "$(val_set 4 NPE)" "$(val_set 5 VV)"
