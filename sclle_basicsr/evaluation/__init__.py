"""Evaluation protocols of the paper's tables: the logic behind ``scripts/eval_table*.py``.

* :mod:`.table1_niqe` (:func:`run_table1`): NIQE, UNIQUE and LOE on the five unpaired sets through BasicSR's test
  runner;
* :mod:`.output_brightness` (:func:`run_output_brightness`): how bright each method leaves those sets;
* :mod:`.table2_paired` (:func:`run_table2`): PSNR / SSIM / LPIPS on a paired set;
* :mod:`.table4_segmentation` (:func:`run_table4`): mIoU of a frozen segmentor on darkened, enhanced Cityscapes;
* :mod:`.methods`: what is compared (``identity``, DCE-Net checkpoints, any BasicSR network from a test option
  file), parsed and checked from the command line;
* :mod:`.common`: the error, the output folder, the report tables and the image conversions.

Enhancement always goes through :func:`sclle_basicsr.inference.enhance_tensor` (the one inference path).
"""
from sclle_basicsr.evaluation.common import (
    EvaluationError,
    bgr_uint8_to_tensor,
    default_out,
    make_output_dir,
    read_color,
    tensor_to_uint8_bgr,
    write_table,
)
from sclle_basicsr.evaluation.methods import (
    IDENTITY,
    NetworkConfig,
    build_network_from_config,
    describe,
    enhance,
    inference_options,
    load_method,
    parse_config,
    parse_methods,
)
from sclle_basicsr.evaluation.output_brightness import run_output_brightness
from sclle_basicsr.evaluation.table1_niqe import (
    LLE_SETS,
    TABLE1_METRICS,
    checkpoint_param_key,
    identity_scores,
    metric_options,
    parse_runner_log,
    prepare_set_folders,
    run_table1,
    table1_options,
    unique_availability,
    write_table1_options,
)
from sclle_basicsr.evaluation.table2_paired import build_lpips, match_pairs, run_table2
from sclle_basicsr.evaluation.table4_segmentation import (
    CITYSCAPES_CLASSES,
    DEFAULT_GAMMAS,
    build_segmentor,
    confusion_matrix,
    darken,
    find_cityscapes_pairs,
    gamma_key,
    iou_from_confusion,
    load_cityscapes_pair,
    run_table4,
    segment_miou,
)

__all__ = [
    'CITYSCAPES_CLASSES', 'DEFAULT_GAMMAS', 'IDENTITY', 'LLE_SETS', 'TABLE1_METRICS', 'EvaluationError',
    'NetworkConfig', 'bgr_uint8_to_tensor', 'build_lpips', 'build_network_from_config', 'build_segmentor',
    'checkpoint_param_key', 'confusion_matrix', 'darken', 'default_out', 'describe', 'enhance', 'find_cityscapes_pairs',
    'gamma_key', 'identity_scores', 'inference_options', 'iou_from_confusion', 'load_cityscapes_pair', 'load_method',
    'make_output_dir', 'match_pairs', 'metric_options', 'parse_config', 'parse_methods', 'parse_runner_log',
    'prepare_set_folders', 'read_color', 'run_output_brightness', 'run_table1', 'run_table2', 'run_table4',
    'segment_miou', 'table1_options', 'tensor_to_uint8_bgr', 'unique_availability', 'write_table',
    'write_table1_options'
]
