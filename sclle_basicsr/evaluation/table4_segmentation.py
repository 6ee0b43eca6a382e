"""Table 4: segmentation of darkened, enhanced Cityscapes images, as mIoU of a frozen DeepLabv3+.

Enhancement is meant to help what runs after it; the paper measures that with a segmentor trained on daylight
images.  Cityscapes val images are darkened as ``I ** gamma`` (RGB in [0, 1], re-quantised to 8 bits as a stored
image would be), enhanced, segmented by :class:`~sclle_basicsr.archs.segmentor_arch.FrozenDeepLabV3Plus`, and scored
as mIoU over the 19 classes (label 255 ignored), accumulated over all images in one confusion matrix per gamma; a
class absent from both the ground truth and the predictions of all images (union 0) is left out of the mean, as
mmseg's ``IoUMetric`` does. The enhancers are those of :mod:`.methods`: DCE-Net checkpoints or any BasicSR network of
a test option file (``--configs``), which must return an image of its input's size.
"""
import csv
import os.path as osp
import time

import cv2
import numpy as np
import torch

from sclle_basicsr.evaluation.common import EvaluationError, read_color, write_table
from sclle_basicsr.evaluation.methods import (
    NetworkConfig,
    describe,
    enhance,
    inference_options,
    load_method,
    require_input_size,
)
from sclle_basicsr.utils.atomic_files import atomic_open
from sclle_basicsr.utils.image_files import walk_files

CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
                      'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
                      'bicycle')
DEFAULT_GAMMAS = (1.0, 2.0, 6.0, 10.0)


def confusion_matrix(pred, label, num_classes=19, ignore_index=255):
    """``(num_classes, num_classes)`` int64 counts, rows = ground truth, columns = prediction."""
    pred = np.asarray(pred).reshape(-1).astype(np.int64)
    label = np.asarray(label).reshape(-1).astype(np.int64)
    keep = (label != ignore_index) & (label >= 0) & (label < num_classes)
    idx = label[keep] * num_classes + pred[keep]
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_from_confusion(conf):
    """``(per-class IoU with NaN where the union is 0, mIoU over the classes with a non-zero union)``."""
    conf = np.asarray(conf, dtype=np.float64)
    inter = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    return iou, float(np.nanmean(iou)) if np.any(union > 0) else float('nan')


def find_cityscapes_pairs(root, split='val'):
    """``[(image, label)]``: ``leftImg8bit/<split>/**/*_leftImg8bit.png`` with ``gtFine/...labelTrainIds.png``."""
    img_root = osp.join(root, 'leftImg8bit', split)
    images = sorted(p for p in walk_files(img_root, recursive=True) if p.endswith('_leftImg8bit.png'))
    if not images:
        raise EvaluationError(f'no *_leftImg8bit.png under {img_root} (option --dataroot)')
    pairs = []
    for img in images:
        rel = osp.relpath(img, img_root)
        label = osp.join(root, 'gtFine', split, rel[:-len('_leftImg8bit.png')] + '_gtFine_labelTrainIds.png')
        if not osp.isfile(label):
            raise EvaluationError(f'label {label} for {img} not found')
        pairs.append((img, label))
    return pairs


def load_cityscapes_pair(img_path, label_path, max_side=None):
    """RGB uint8 image and uint8 trainId label, downscaled (area / nearest) so the longer side <= ``max_side``."""
    img = read_color(img_path)[:, :, ::-1]
    label = cv2.imread(label_path, cv2.IMREAD_UNCHANGED)
    if label is None or label.ndim != 2:
        raise EvaluationError(f'cannot read {label_path} as a single-channel label image')
    if label.shape != img.shape[:2]:
        raise EvaluationError(f'size mismatch: {img_path} {img.shape[:2]} vs {label_path} {label.shape}')
    h, w = label.shape
    if max_side and max(h, w) > max_side:
        scale = max_side / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = cv2.resize(np.ascontiguousarray(img), size, interpolation=cv2.INTER_AREA)
        label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(img), label


def darken(rgb_uint8, gamma):
    """``(1, 3, H, W)`` float: ``(I / 255) ** gamma``, re-quantised to 8 bits."""
    x = torch.from_numpy(rgb_uint8).permute(2, 0, 1)[None].float().div_(255.0)
    return torch.round(x.pow_(gamma) * 255.0).div_(255.0)


def build_segmentor(config=None, checkpoint=None, cfg_options=None, allow_random_init=False, device='cpu'):
    """The frozen mmseg segmentor of the protocol, checked to predict the 19 Cityscapes classes."""
    from sclle_basicsr.archs.segmentor_arch import FrozenDeepLabV3Plus
    seg = FrozenDeepLabV3Plus(config=config, checkpoint=checkpoint, cfg_options=cfg_options,
                              allow_random_init=allow_random_init)
    if seg.num_classes != 19:
        raise EvaluationError(f'the segmentor has {seg.num_classes} classes, Cityscapes needs 19')
    return seg.to(device)


def segment_miou(segmentor, enhancer, pairs, gammas=DEFAULT_GAMMAS, max_side=None, device='cpu', tile=0,
                 log=print, tag='', source=None):
    """``{gamma: (mIoU, per-class IoU, confusion)}`` for one enhancer (``None``: identity) over ``pairs``;
    ``source``: where the enhancer comes from (see :mod:`.methods`), for messages and how it is run."""
    what = 'the enhancer' if source is None else describe(source)
    options = inference_options(source, tile)
    confs = {g: np.zeros((19, 19), dtype=np.int64) for g in gammas}
    for i, (img_path, label_path) in enumerate(pairs, 1):
        rgb, label = load_cityscapes_pair(img_path, label_path, max_side)
        for g in gammas:
            dark = darken(rgb, g).to(device)
            x = require_input_size(enhance(enhancer, dark, f'{what} on {img_path}', **options), dark, source,
                                   img_path, 'Table 4 scores the segmentation against the labels')
            with torch.no_grad():
                pred = segmentor(x).argmax(1)[0].cpu().numpy()
            confs[g] += confusion_matrix(pred, label)
        log(f'[table4] {tag} {i}/{len(pairs)} {osp.basename(img_path)} ({label.shape[1]}x{label.shape[0]})')
    out = {}
    for g in gammas:
        iou, miou = iou_from_confusion(confs[g])
        out[g] = (miou, iou, confs[g])
    return out


def gamma_key(g):
    return f'gamma={g:g}'


def run_table4(methods, dataroot, out, segmentor, gammas=DEFAULT_GAMMAS, max_side=None, max_images=None,
               device='cpu', tile=0, log=print):
    """mIoU (%) per gamma for each method; writes ``table4_segmentation.{md,csv}`` and per-class IoU CSV."""
    pairs = find_cityscapes_pairs(dataroot)[:max_images or None]
    rows, class_rows = [], []
    for name, source in methods:
        net = load_method(source, device)
        start = time.perf_counter()
        res = segment_miou(segmentor, net, pairs, gammas, max_side, device, tile, log, name, source=source)
        row = {'method': name, 'seconds': time.perf_counter() - start}
        for g in gammas:
            row[gamma_key(g)] = 100.0 * res[g][0]
            class_rows.append(dict({'method': name, 'gamma': g},
                                   **{c: 100.0 * v for c, v in zip(CITYSCAPES_CLASSES, res[g][1])}))
            log(f'[table4] {name} {gamma_key(g)}: mIoU {100 * res[g][0]:.2f}')
        rows.append(row)
    with atomic_open(osp.join(out, 'table4_per_class_iou.csv'), 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=['method', 'gamma'] + list(CITYSCAPES_CLASSES))
        writer.writeheader()
        writer.writerows(class_rows)
    notes = [f'{len(pairs)} images from {dataroot}' + (f', downscaled to longer side {max_side} (labels nearest)'
                                                        if max_side else '') + '.',
             'Darkening: RGB in [0, 1] raised to gamma, re-quantised to 8 bits; then enhanced (identity: not) and '
             f'segmented by FrozenDeepLabV3Plus ({getattr(segmentor, "config", "?")}, checkpoint '
             f'{getattr(segmentor, "checkpoint", None)}).',
             'mIoU (%): 19 Cityscapes classes, label 255 ignored, one confusion matrix per gamma over all images; '
             'classes absent from both ground truth and predictions (union 0) are excluded from the mean, as in '
             "mmseg's IoUMetric. Per-class IoU in table4_per_class_iou.csv.",
             'Random segmentor weights give meaningless numbers (tests only).'
             if getattr(segmentor, 'checkpoint', 1) is None else '']
    configs = [f'{name}: {source.options_file}' for name, source in methods if isinstance(source, NetworkConfig)]
    if configs:
        notes.append('--configs networks (network_g and path of, whole images on the torch backend): '
                     + ', '.join(configs) + '.')
    columns = ['method'] + [gamma_key(g) for g in gammas] + ['seconds']
    md = write_table(rows, columns, osp.join(out, 'table4_segmentation.md'),
                     osp.join(out, 'table4_segmentation.csv'), 'Table 4: segmentation of darkened Cityscapes',
                     [n for n in notes if n], dict({gamma_key(g): '.2f' for g in gammas}, seconds='.1f'))
    return rows, md
