"""Evaluation protocols of the paper's tables (issue 5): the logic behind ``scripts/eval_table*.py``.

* **Table 1** (:func:`run_table1`): NIQE on the five unpaired sets (DICM, LIME, MEF, NPE, VV) *through BasicSR's
  test runner*: one BasicSR test option file is generated per checkpoint into the output folder, the runner
  (``basicsr.test.test_pipeline`` with the output folder as root) is run in a subprocess, and the NIQE per set is
  parsed from its log (``# niqe: x``, 4 decimals), seconds per set from the log timestamps (``Testing <set>...`` to
  ``Validation <set>``).  ``identity`` (the input images) is not a network: its NIQE is computed directly with
  ``basicsr.metrics.calculate_niqe`` on the images as read by OpenCV (3-channel BGR uint8), with the same settings
  as the runner (crop_border 0, Y channel), which is what the runner computes for an enhancer returning its input.
* **Table 2** (:func:`run_table2`): paired evaluation on a SICE Part2 layout (``<root>/low``, ``<root>/gt``, files
  matched by stem): PSNR and SSIM from ``basicsr.metrics`` on 8-bit **RGB** images (all three channels,
  ``test_y_channel=False``, ``crop_border=0``) and LPIPS (``lpips`` package, AlexNet or VGG backbone loaded from a
  local torchvision state dict, the package's own linear layers v0.1).
* **Table 4** (:func:`run_table4`): Cityscapes val images darkened as ``I ** gamma`` (RGB in [0, 1], re-quantised to
  8 bits as a stored image would be), enhanced, segmented by :class:`FrozenDeepLabV3Plus`, mIoU over 19 classes
  (label 255 ignored) accumulated over all images in one confusion matrix per gamma; a class absent from both the
  ground truth and the predictions of all images (union 0) is left out of the mean, as mmseg's ``IoUMetric`` does.

Enhancement always goes through :func:`sclle_basicsr.inference.enhance_tensor` (the one inference path).
"""
import csv
import datetime
import glob
import os
import os.path as osp
import re
import time

import cv2
import numpy as np
import torch

from sclle_basicsr.assets import REPO_ROOT, asset_path
from sclle_basicsr.atomic_files import atomic_open, write_atomic
from sclle_basicsr.image_files import list_images
from sclle_basicsr.inference import CheckpointError, read_dcenet_state_dict
from sclle_basicsr.unscorable import mean_or_nan, score_or_none

IDENTITY = 'identity'
LLE_SETS = ('DICM', 'LIME', 'MEF', 'NPE', 'VV')
CITYSCAPES_CLASSES = ('road', 'sidewalk', 'building', 'wall', 'fence', 'pole', 'traffic light', 'traffic sign',
                      'vegetation', 'terrain', 'sky', 'person', 'rider', 'car', 'truck', 'bus', 'train', 'motorcycle',
                      'bicycle')
DEFAULT_GAMMAS = (1.0, 2.0, 6.0, 10.0)


class EvaluationError(ValueError):
    """Bad inputs to an evaluation protocol (the message names the file, folder or option)."""


# ----------------------------------------------------------------------------------------------------------------
# Shared helpers


def parse_methods(specs):
    """``['sclle=/w/a.pth', 'identity']`` -> ``[('sclle', '/w/a.pth'), ('identity', None)]`` (checked)."""
    methods = []
    for spec in specs or []:
        if spec == IDENTITY:
            name, path = IDENTITY, None
        elif '=' in spec:
            name, path = spec.split('=', 1)
            if not name or not re.fullmatch(r'[A-Za-z0-9_.-]+', name):
                raise EvaluationError(f'checkpoint name {name!r} in {spec!r}: use letters, digits, _ . -')
            if name == IDENTITY:
                raise EvaluationError(f'{spec!r}: the name "identity" is reserved for the input images')
            if not osp.isfile(path):
                raise EvaluationError(f'checkpoint {path} (--checkpoints {spec}) not found')
            try:
                read_dcenet_state_dict(path)
            except CheckpointError as err:  # first line: torch's own explanation can run to a page
                raise EvaluationError(f'checkpoint {path} (--checkpoints {spec}) is not usable: '
                                      f'{str(err).splitlines()[0]}') from err
            path = osp.abspath(path)
        else:
            raise EvaluationError(f'--checkpoints entry {spec!r}: expected name=path or "identity"')
        if name in (m[0] for m in methods):
            raise EvaluationError(f'checkpoint name {name!r} given twice')
        methods.append((name, path))
    if not methods:
        raise EvaluationError('no checkpoints given (--checkpoints name=path ... and/or identity)')
    return methods


def make_output_dir(out, overwrite=False):
    """Create ``out``; an existing non-empty folder is an error unless ``overwrite``, an existing file always."""
    if osp.exists(out) and not osp.isdir(out):
        raise EvaluationError(f'--out {out} is an existing file; --out names the output folder')
    if osp.isdir(out) and os.listdir(out) and not overwrite:
        raise EvaluationError(f'output folder {out} exists and is not empty (pass --overwrite or another --out)')
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise EvaluationError(f'cannot create the output folder --out {out}: {err}') from err
    return osp.abspath(out)


def default_out(prefix):
    return osp.join(REPO_ROOT, 'results', f'{prefix}_{datetime.datetime.now():%Y%m%d_%H%M%S}')


def write_table(rows, columns, md_path, csv_path, title, notes=(), fmt=None):
    """Write ``rows`` (dicts) as a Markdown table (with title and notes) and a CSV file."""
    fmt = fmt or {}

    def cell(col, value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return '-'
        if isinstance(value, float):
            return format(value, fmt.get(col, '.4f'))
        return str(value)

    lines = [f'# {title}', '', '| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(cell(c, r.get(c)) for c in columns) + ' |' for r in rows]
    if notes:
        lines += [''] + [f'- {n}' for n in notes]
    write_atomic(md_path, '\n'.join(lines) + '\n')
    with atomic_open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        for r in rows:
            writer.writerow({c: ('' if r.get(c) is None else r.get(c)) for c in columns})
    return '\n'.join(lines)


def load_method(path, device='cpu'):
    """``None`` (identity) or a DCENet loaded by :func:`~sclle_basicsr.inference.load_enhancer`."""
    if path is None:
        return None
    from sclle_basicsr.inference import load_enhancer
    try:
        return load_enhancer(path, device)
    except CheckpointError as err:
        raise EvaluationError(f'checkpoint {path} is not usable: {str(err).splitlines()[0]}') from err


def enhance(net, x, what='', **kwargs):
    """``x`` (N, 3, H, W) RGB [0, 1] enhanced by ``net`` through ``enhance_tensor`` (``None``: returned as is).

    NaN or Inf weights or results are an :class:`EvaluationError` starting with ``what``: quantised, they would
    become black pixels and a wrong table.
    """
    if net is None:
        return x
    from sclle_basicsr.inference import InvalidWeightsError, NonFiniteOutputError, enhance_tensor
    try:
        y = enhance_tensor(net, x, **kwargs)
    except (InvalidWeightsError, NonFiniteOutputError) as err:
        raise EvaluationError(f'{what}: {err}') from err
    return y.clamp(0, 1)


def bgr_uint8_to_tensor(img):
    """OpenCV BGR uint8 ``HxWx3`` -> ``(1, 3, H, W)`` RGB float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1)[None].float().div_(255.0)


def tensor_to_uint8_bgr(x):
    """``(1, 3, H, W)`` RGB [0, 1] -> BGR uint8, rounded as BasicSR's ``tensor2img``."""
    arr = x[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()[:, :, ::-1]
    return np.ascontiguousarray((arr * 255.0).round().astype(np.uint8))


# ----------------------------------------------------------------------------------------------------------------
# Table 1: NIQE through BasicSR's test runner

TABLE1_OPTIONS = """# generated by sclle_basicsr.evaluation (Table 1); run with the output folder as BasicSR root path
name: {name}
model_type: SCLLLEModel
scale: 1
num_gpu: {num_gpu}
manual_seed: 0
datasets:
{datasets}
network_g:
  type: DCENet
path:
  pretrain_network_g: {weights}
  param_key_g: {param_key}
  strict_load_g: true
val:
  save_img: {save_img}
  suffix: ~
  pbar: false
  metrics:
    niqe:
      type: calculate_niqe
      crop_border: 0
      input_order: HWC
      convert_to: y
"""

DATASET_ENTRY = """  test_{index}:
    name: {name}
    type: CheckedSingleImageDataset
    dataroot_lq: {root}
    io_backend:
      type: disk
"""

def prepare_set_folders(dataroot, sets, out, max_images=None):
    """``{set: folder}``: the sets under ``dataroot``, or (``max_images``) folders of links to their first images."""
    folders = {}
    for name in sets:
        src = osp.join(dataroot, name)
        images = list_images(src) if osp.isdir(src) else []
        if not images:
            raise EvaluationError(f'no images in {src} (option --dataroot {dataroot}, set {name})')
        if max_images:
            dst = osp.join(out, 'inputs', name)
            os.makedirs(dst, exist_ok=True)
            for path in images[:max_images]:
                link = osp.join(dst, osp.basename(path))
                if not osp.lexists(link):
                    os.symlink(osp.abspath(path), link)
            folders[name] = dst
        else:
            folders[name] = osp.abspath(src)
    return folders


def checkpoint_param_key(weights):
    """BasicSR's ``param_key_g`` for a checkpoint: the entry holding the weights (``params_ema``, ``params``,
    ``state_dict``), ``~`` for a bare state_dict such as the released weights."""
    _, source, _, _ = read_dcenet_state_dict(weights)
    return source or '~'


def write_table1_options(path, name, weights, folders, save_img=False, num_gpu='auto'):
    datasets = ''.join(DATASET_ENTRY.format(index=i, name=s, root=root) for i, (s, root) in
                       enumerate(folders.items(), start=1))
    text = TABLE1_OPTIONS.format(name=name, weights=weights, datasets=datasets.rstrip('\n'),
                                 param_key=checkpoint_param_key(weights),
                                 save_img=str(bool(save_img)).lower(), num_gpu=num_gpu)
    write_atomic(path, text)
    return path


_LOG_LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: (.*)$')


def parse_runner_log(text, sets):
    """``{set: (niqe, seconds, images left out)}`` from a BasicSR test log (``Testing <set>...`` ...
    ``Validation <set>``; images NIQE could not score are counted from the model's warning)."""
    events = []  # (time, message first line, following lines)
    for line in text.splitlines():
        m = _LOG_LINE.match(line)
        if m:
            stamp = datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S,%f')
            events.append([stamp, m.group(2), []])
        elif events:
            events[-1][2].append(line)
    results = {}
    started = {}
    for stamp, msg, rest in events:
        m = re.match(r'Testing (.+)\.\.\.$', msg)
        if m:
            started[m.group(1)] = stamp
            continue
        m = re.match(r'Validation (.+)$', msg)
        if m and m.group(1) in sets:
            found = re.search(r'# niqe: (-?[0-9.]+|nan|inf)', '\n'.join(rest))
            if not found:
                continue
            seconds = (stamp - started[m.group(1)]).total_seconds() if m.group(1) in started else float('nan')
            left_out = re.search(rf'niqe of {re.escape(m.group(1))}: (\d+) of \d+ image\(s\) left out', text)
            results[m.group(1)] = (float(found.group(1)), seconds, int(left_out.group(1)) if left_out else 0)
    missing = [s for s in sets if s not in results]
    if missing:
        raise EvaluationError(f'no NIQE logged for {", ".join(missing)}')
    return results


def run_checkpoint_through_runner(name, weights, folders, out, save_img=False, log=print):
    """Generate ``<out>/options/test_<name>.yml``, run BasicSR's test runner on it, return the parsed log."""
    os.makedirs(osp.join(out, 'options'), exist_ok=True)
    opt_file = write_table1_options(osp.join(out, 'options', f'test_{name}.yml'), name, weights, folders,
                                    save_img=save_img)
    from sclle_basicsr.basicsr_runner import run_pipeline
    returncode, tail = run_pipeline(  # progress: the runner's per-set lines, as they come
        'test', out, ['-opt', opt_file],
        show=r'INFO: (Testing .*\.\.\.|Number of test images)|# niqe:|cannot score|left out',
        log=lambda line: log(f'[table1] {name} runner: {line.strip()}'))
    logs = sorted(glob.glob(osp.join(out, 'results', name, f'test_{name}_*.log')), key=osp.getmtime)
    if returncode != 0:
        raise EvaluationError(f'BasicSR test runner failed for {name} ({opt_file}):\n{tail[-3000:]}')
    if not logs:
        raise EvaluationError(f'BasicSR test runner wrote no log for {name} under {osp.join(out, "results")}')
    with open(logs[-1]) as f:
        return parse_runner_log(f.read(), list(folders)), opt_file, logs[-1]


def identity_niqe(folders, log=print):
    """``{set: (niqe, seconds, left out)}`` of the input images themselves (``calculate_niqe``, crop 0, Y channel).

    An image NIQE cannot score is logged by name and left out of the mean, as the runner does.
    """
    from basicsr.metrics import calculate_niqe
    results = {}
    for name, folder in folders.items():
        start = time.perf_counter()
        values, left_out = [], 0
        for path in list_images(folder):
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                continue  # the runner's dataset skips unreadable files too
            value = score_or_none('niqe', lambda: calculate_niqe(img, crop_border=0, input_order='HWC',
                                                                 convert_to='y'), path, log)
            if value is None:
                left_out += 1
            else:
                values.append(value)
        if not values and not left_out:
            raise EvaluationError(f'no readable image in {folder}')
        if left_out:
            log(f'niqe of {name}: {left_out} of {len(values) + left_out} image(s) left out (cannot be scored)')
        results[name] = (mean_or_nan(values), time.perf_counter() - start, left_out)
    return results


def run_table1(methods, out, sets=LLE_SETS, dataroot=None, max_images=None, save_img=False, log=print):
    """NIQE per set for each ``(name, weights or None)`` in ``methods``; writes ``table1_niqe.{md,csv}``.

    Returns ``(rows, markdown)``; each row has ``method``, ``<set>`` NIQE, ``average`` (mean of the per-set means)
    and ``<set>_s`` seconds.
    """
    dataroot = dataroot or asset_path('lle_testsets')
    sets = list(sets)
    unknown = [s for s in sets if not osp.isdir(osp.join(dataroot, s))]
    if unknown:
        raise EvaluationError(f'set folder(s) {", ".join(unknown)} not found under {dataroot} (option --dataroot)')
    folders = prepare_set_folders(dataroot, sets, out, max_images)
    rows, left_out = [], []
    for name, weights in methods:
        log(f'[table1] {name}: ' + ('NIQE of the input images (calculate_niqe)' if weights is None else
                                    f'BasicSR test runner on {weights}'))
        start = time.perf_counter()
        if weights is None:
            res = identity_niqe(folders, log=lambda msg: log(f'[table1] identity: {msg}'))
        else:
            res, opt_file, log_file = run_checkpoint_through_runner(name, weights, folders, out, save_img, log=log)
            log(f'[table1] {name}: options {opt_file}, log {log_file}')
        row = {'method': name, 'average': float(np.mean([res[s][0] for s in sets]))}
        for s in sets:
            row[s] = res[s][0]
            row[f'{s}_s'] = res[s][1]
            log(f'[table1] {name} {s}: NIQE {res[s][0]:.4f} ({res[s][1]:.1f} s)')
            if res[s][2]:
                left_out.append(f'{name} {s}: {res[s][2]}')
        log(f'[table1] {name}: average {row["average"]:.4f}, {time.perf_counter() - start:.1f} s in all')
        rows.append(row)
    columns = ['method'] + sets + ['average'] + [f'{s}_s' for s in sets]
    counts = ', '.join(f'{s} {len(list_images(folders[s]))}' for s in sets)
    notes = [f'NIQE: basicsr.metrics.calculate_niqe, crop_border 0, Y channel; lower is better. Images: {counts}'
             + (f' (first {max_images} per set, --max_images)' if max_images else '') + f'; data {dataroot}.',
             'Checkpoints: BasicSR test runner (sclle_basicsr test model, generated options in options/), NIQE '
             'parsed from its log (4 decimals). identity: NIQE of the input images computed directly with '
             'calculate_niqe (not through the runner).',
             'average: mean of the per-set NIQE; <set>_s: seconds per set (runner log timestamps; identity: '
             'wall time).']
    if left_out:
        notes.append('Images NIQE cannot score (under 96x96 px, flat) are left out of the mean and named in the '
                     'log; left out: ' + ', '.join(left_out) + '.')
    fmt = {f'{s}_s': '.1f' for s in sets}
    md = write_table(rows, columns, osp.join(out, 'table1_niqe.md'), osp.join(out, 'table1_niqe.csv'),
                     'Table 1: NIQE on the unpaired low-light sets', notes, fmt)
    return rows, md


# ----------------------------------------------------------------------------------------------------------------
# Table 2: paired PSNR / SSIM / LPIPS


def match_pairs(root):
    """``[(stem, low_path, gt_path)]`` for ``<root>/low`` and ``<root>/gt`` matched by file stem (checked)."""
    low_dir, gt_dir = osp.join(root, 'low'), osp.join(root, 'gt')
    for d in (low_dir, gt_dir):
        if not osp.isdir(d):
            raise EvaluationError(f'folder {d} not found (expected <root>/low and <root>/gt, option --dataroot)')

    def by_stem(folder):
        found = {}
        for p in list_images(folder):
            stem = osp.splitext(osp.basename(p))[0]
            if stem in found:
                raise EvaluationError(f'two images with stem {stem!r} in {folder}')
            found[stem] = p
        return found

    low, gt = by_stem(low_dir), by_stem(gt_dir)
    if not low:
        raise EvaluationError(f'no images in {low_dir}')
    only_low, only_gt = sorted(set(low) - set(gt)), sorted(set(gt) - set(low))
    if only_low or only_gt:
        raise EvaluationError(f'unmatched files: in {low_dir} without ground truth: {only_low or "none"}; '
                              f'in {gt_dir} without low-light input: {only_gt or "none"}')
    return [(s, low[s], gt[s]) for s in sorted(low)]


def _read_color(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise EvaluationError(f'cannot read image {path}')
    return img


def build_lpips(backbone_path, net='alex', device='cpu'):
    """LPIPS (v0.1 linear layers shipped in the ``lpips`` package) with the backbone from a local state dict.

    ``backbone_path``: a torchvision ``alexnet()`` / ``vgg16()`` state dict (full model, ``features.*`` keys) or
    of its ``features`` module alone (``0.weight`` ...).  Nothing is downloaded.
    """
    import lpips
    if not backbone_path:
        raise EvaluationError('LPIPS needs the backbone weights: pass --lpips_backbone PATH (a torchvision '
                              f'{net} state dict) or --no_lpips')
    if not osp.isfile(backbone_path):
        raise EvaluationError(f'LPIPS backbone {backbone_path} (option --lpips_backbone) not found')
    model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    state = torch.load(backbone_path, map_location='cpu', weights_only=True)
    if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
        state = state['state_dict']
    feats = {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
    if not feats:
        feats = {k: v for k, v in state.items() if re.match(r'^\d+\.', k)}
    own = {}
    for slice_name, seq in model.net.named_children():
        if not slice_name.startswith('slice'):
            continue
        for idx, _ in seq.named_children():
            for key, value in seq.state_dict().items():
                if key.startswith(f'{idx}.'):
                    own[f'{slice_name}.{key}'] = (key, value)
    new_state, missing = {}, []
    for full, (key, value) in own.items():
        if key not in feats or tuple(feats[key].shape) != tuple(value.shape):
            missing.append(key)
        else:
            new_state[full] = feats[key]
    if missing:
        raise EvaluationError(f'LPIPS backbone {backbone_path} (option --lpips_backbone) is not a torchvision {net} '
                              f'state dict: missing or mis-shaped features.{", features.".join(missing)}')
    model.net.load_state_dict(new_state, strict=True)
    return model.eval().requires_grad_(False).to(device)


def run_table2(methods, dataroot, out, lpips_backbone=None, lpips_net='alex', no_lpips=False, max_images=None,
               device='cpu', tile=0, log=print):
    """PSNR / SSIM (RGB, crop 0) / LPIPS per method on a paired set; writes ``table2_paired.{md,csv}``."""
    from basicsr.metrics import calculate_psnr, calculate_ssim
    pairs = match_pairs(dataroot)[:max_images or None]
    lp = None if no_lpips else build_lpips(lpips_backbone, lpips_net, device)
    rows, left_out = [], []
    for name, weights in methods:
        net = load_method(weights, device)
        start = time.perf_counter()
        scores = {'PSNR': [], 'SSIM': [], 'LPIPS': []}
        for i, (stem, low_path, gt_path) in enumerate(pairs, 1):
            low, gt = _read_color(low_path), _read_color(gt_path)
            if low.shape != gt.shape:
                raise EvaluationError(f'size mismatch for {stem}: {low_path} is {low.shape[1]}x{low.shape[0]}, '
                                      f'{gt_path} is {gt.shape[1]}x{gt.shape[0]}')
            x = bgr_uint8_to_tensor(low).to(device)
            out_img = tensor_to_uint8_bgr(enhance(net, x, f'checkpoint {weights} on {low_path}', tile=tile))
            metrics = {
                'PSNR': lambda: calculate_psnr(out_img, gt, crop_border=0, input_order='HWC', test_y_channel=False),
                'SSIM': lambda: calculate_ssim(out_img, gt, crop_border=0, input_order='HWC', test_y_channel=False)}
            if lp is not None:
                metrics['LPIPS'] = lambda: _lpips(lp, out_img, gt, device)
            found = {}
            for metric, compute in metrics.items():
                found[metric] = score_or_none(metric, compute, low_path, lambda msg: log(f'[table2] {name}: {msg}'))
                if found[metric] is not None:
                    scores[metric].append(found[metric])
            log(f'[table2] {name} {i}/{len(pairs)} {stem}: '
                + ' '.join(f'{m} {v:.4f}' if v is not None else f'{m} -' for m, v in found.items()))
        row = {'method': name, 'images': len(pairs), 'seconds': time.perf_counter() - start}
        for metric, values in scores.items():
            row[metric] = mean_or_nan(values) if metric != 'LPIPS' or lp is not None else None
            if (metric != 'LPIPS' or lp is not None) and len(values) < len(pairs):
                left_out.append(f'{name} {metric}: {len(pairs) - len(values)}')
                log(f'[table2] {name}: {metric} left out {len(pairs) - len(values)} of {len(pairs)} image(s) '
                    '(cannot be scored, named above)')
        rows.append(row)
    notes = [f'{len(pairs)} pairs from {dataroot} (low/ and gt/ matched by file stem).',
             'PSNR, SSIM: basicsr.metrics on 8-bit RGB (all three channels, test_y_channel=False, crop_border=0), '
             'mean over images. LPIPS: lpips package v0.1, '
             + ('skipped (--no_lpips).' if no_lpips else f'{lpips_net} backbone from {lpips_backbone}, inputs in '
                                                           '[-1, 1], mean over images; lower is better.'),
             'Enhanced images are rounded to 8 bits before the metrics; identity = the low-light input.']
    if left_out:
        notes.append('Images a metric cannot score are left out of its mean and named in the log; left out: '
                     + ', '.join(left_out) + '.')
    md = write_table(rows, ['method', 'PSNR', 'SSIM', 'LPIPS', 'images', 'seconds'],
                     osp.join(out, 'table2_paired.md'), osp.join(out, 'table2_paired.csv'),
                     'Table 2: paired evaluation', notes, {'PSNR': '.3f', 'seconds': '.1f'})
    return rows, md


def _lpips(model, out_bgr, gt_bgr, device):
    with torch.no_grad():
        return model(bgr_uint8_to_tensor(out_bgr).to(device), bgr_uint8_to_tensor(gt_bgr).to(device),
                     normalize=True).mean()


# ----------------------------------------------------------------------------------------------------------------
# Table 4: segmentation of darkened, enhanced Cityscapes images


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
    images = sorted(glob.glob(osp.join(img_root, '**', '*_leftImg8bit.png'), recursive=True))
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
    img = _read_color(img_path)[:, :, ::-1]
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
    from sclle_basicsr.archs.segmentor_arch import FrozenDeepLabV3Plus
    seg = FrozenDeepLabV3Plus(config=config, checkpoint=checkpoint, cfg_options=cfg_options,
                              allow_random_init=allow_random_init)
    if seg.num_classes != 19:
        raise EvaluationError(f'the segmentor has {seg.num_classes} classes, Cityscapes needs 19')
    return seg.to(device)


def segment_miou(segmentor, enhancer, pairs, gammas=DEFAULT_GAMMAS, max_side=None, device='cpu', tile=0,
                 log=print, tag='', source=None):
    """``{gamma: (mIoU, per-class IoU, confusion)}`` for one enhancer (``None``: identity; ``source``: its
    checkpoint, for messages) over ``pairs``."""
    confs = {g: np.zeros((19, 19), dtype=np.int64) for g in gammas}
    for i, (img_path, label_path) in enumerate(pairs, 1):
        rgb, label = load_cityscapes_pair(img_path, label_path, max_side)
        for g in gammas:
            x = enhance(enhancer, darken(rgb, g).to(device), f'checkpoint {source} on {img_path}', tile=tile)
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
    for name, weights in methods:
        net = load_method(weights, device)
        start = time.perf_counter()
        res = segment_miou(segmentor, net, pairs, gammas, max_side, device, tile, log, name, source=weights)
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
    columns = ['method'] + [gamma_key(g) for g in gammas] + ['seconds']
    md = write_table(rows, columns, osp.join(out, 'table4_segmentation.md'),
                     osp.join(out, 'table4_segmentation.csv'), 'Table 4: segmentation of darkened Cityscapes',
                     [n for n in notes if n], dict({gamma_key(g): '.2f' for g in gammas}, seconds='.1f'))
    return rows, md
