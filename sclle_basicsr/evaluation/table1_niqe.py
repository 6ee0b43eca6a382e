"""Table 1: NIQE on the five unpaired low-light sets (DICM, LIME, MEF, NPE, VV) through BasicSR's test runner.

These sets have no ground truth, so the paper scores them with a no-reference metric; and it is scored by BasicSR's
own runner so that the numbers are the ones a BasicSR user gets from a test option file.  One BasicSR test option
file is generated per network into ``<out>/options/`` (a DCE-Net checkpoint, or the ``network_g`` and weights of a
``--configs`` option file), the runner (``basicsr.test.test_pipeline`` with the output folder as root) is run in a
fresh process, and the NIQE per set is parsed from its log (``# niqe: x``, 4 decimals), the seconds per set from
its timestamps (``Testing <set>...`` to ``Validation <set>``).

``identity`` (the input images) is not a network: its NIQE is computed directly with
``basicsr.metrics.calculate_niqe`` on the images as read by OpenCV (3-channel BGR uint8), with the same settings as
the runner (crop_border 0, Y channel), which is what the runner computes for an enhancer returning its input.
"""
import datetime
import os
import os.path as osp
import re
import time

import cv2
import numpy as np
import yaml

from sclle_basicsr.assets import asset_path
from sclle_basicsr.atomic_files import write_atomic
from sclle_basicsr.evaluation.common import EvaluationError, write_table
from sclle_basicsr.evaluation.methods import NetworkConfig
from sclle_basicsr.image_files import list_images, walk_files
from sclle_basicsr.inference import read_dcenet_state_dict
from sclle_basicsr.unscorable import mean_or_nan, score_or_none, size_problem

LLE_SETS = ('DICM', 'LIME', 'MEF', 'NPE', 'VV')
NIQE_METRIC = {'type': 'calculate_niqe', 'crop_border': 0, 'input_order': 'HWC', 'convert_to': 'y'}
# DCE-Net in 512-pixel tiles with 8 pixels of overlap: the same output as the whole image (receptive radius 7), with
# memory bounded by the tile: whole, a 4 MP VV image took the runner process to 7.5 GB resident.
DCENET_TILING = {'tile': 512, 'tile_pad': 8}


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
    """BasicSR's ``param_key_g`` for a DCE-Net checkpoint: the entry :func:`~sclle_basicsr.inference.unwrap_state_dict`
    takes the weights from (``params_ema``, ``params``, ``state_dict``), None (``~``) for a bare state dict such as the
    released weights."""
    return read_dcenet_state_dict(weights)[1]


def table1_options(name, source, folders, save_img=False, num_gpu='auto'):
    """The BasicSR test options (a dict) that score ``source`` on ``folders`` with NIQE.

    ``SCLLLEModel`` is SRModel's test and validation for any ``network_g`` (NIQE needs no ground truth), with images
    NIQE cannot score named and left out of the mean instead of ending the run.  A DCE-Net checkpoint gets its width
    and iterations from the weights; a :class:`NetworkConfig` brings its own ``network_g`` and ``path`` and runs on
    the ``torch`` backend.
    """
    val = {'save_img': bool(save_img), 'suffix': None, 'pbar': False, 'metrics': {'niqe': dict(NIQE_METRIC)}}
    if isinstance(source, NetworkConfig):
        network_g = dict(source.network_g)
        path = {'pretrain_network_g': source.pretrain, 'param_key_g': source.param_key,
                'strict_load_g': source.strict}
        val['backend'] = 'torch'
    else:
        _, param_key, num_iterations, num_features = read_dcenet_state_dict(source)
        network_g = {'type': 'DCENet', 'num_iterations': num_iterations, 'num_features': num_features}
        path = {'pretrain_network_g': source, 'param_key_g': param_key, 'strict_load_g': True}
        val.update(DCENET_TILING)
    datasets = {f'test_{i}': {'name': s, 'type': 'CheckedSingleImageDataset', 'dataroot_lq': root,
                              'io_backend': {'type': 'disk'}} for i, (s, root) in enumerate(folders.items(), start=1)}
    return {'name': name, 'model_type': 'SCLLLEModel', 'scale': 1, 'num_gpu': num_gpu, 'manual_seed': 0,
            'datasets': datasets, 'network_g': network_g, 'path': path, 'val': val}


def write_table1_options(path, name, source, folders, save_img=False, num_gpu='auto'):
    """:func:`table1_options` written to ``path`` as YAML; returns ``path``."""
    options = table1_options(name, source, folders, save_img, num_gpu)
    write_atomic(path, '# generated by sclle_basicsr.evaluation (Table 1); run with the output folder as BasicSR '
                       'root path\n' + yaml.safe_dump(options, sort_keys=False))
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


def run_through_runner(name, source, folders, out, save_img=False, imports=(), log=print):
    """Generate ``<out>/options/test_<name>.yml``, run BasicSR's test runner on it (``imports``: modules it imports
    first), return ``(parsed log, option file, log file)``."""
    os.makedirs(osp.join(out, 'options'), exist_ok=True)
    opt_file = write_table1_options(osp.join(out, 'options', f'test_{name}.yml'), name, source, folders,
                                    save_img=save_img)
    from sclle_basicsr.basicsr_runner import run_pipeline
    returncode, tail = run_pipeline(  # progress: the runner's per-set lines, as they come
        'test', out, [arg for module in imports for arg in ('--import', module)] + ['-opt', opt_file],
        show=r'INFO: (Testing .*\.\.\.|Number of test images)|# niqe:|cannot score|left out',
        log=lambda line: log(f'[table1] {name} runner: {line.strip()}'))
    log_name = re.compile(rf'test_{re.escape(name)}_.*\.log')
    results = osp.join(out, 'results', name)
    logs = sorted((p for p in walk_files(results) if log_name.fullmatch(osp.basename(p))), key=osp.getmtime)
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
                                                                 convert_to='y'), path, log,
                                  size_problem({'type': 'calculate_niqe', 'crop_border': 0}, img.shape))
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


def run_table1(methods, out, sets=LLE_SETS, dataroot=None, max_images=None, save_img=False, log=print, imports=()):
    """NIQE per set for each ``(name, source)`` in ``methods`` (see :mod:`.methods`); writes
    ``table1_niqe.{md,csv}``. ``imports``: modules the runner imports first (archs of your own, ``--imports``).

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
    for name, source in methods:
        start = time.perf_counter()
        if source is None:
            log(f'[table1] {name}: NIQE of the input images (calculate_niqe)')
            res = identity_niqe(folders, log=lambda msg: log(f'[table1] identity: {msg}'))
        else:
            log(f'[table1] {name}: BasicSR test runner on '
                + (source.where if isinstance(source, NetworkConfig) else source))
            res, opt_file, log_file = run_through_runner(name, source, folders, out, save_img, imports, log=log)
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
             'Networks: BasicSR test runner (SCLLLEModel test model, generated options in options/), NIQE parsed '
             'from its log (4 decimals); DCE-Net checkpoints on the inference backend auto, --configs networks on '
             'torch. identity: NIQE of the input images computed directly with calculate_niqe (not through the '
             'runner).',
             'average: mean of the per-set NIQE; <set>_s: seconds per set (runner log timestamps; identity: '
             'wall time).']
    configs = [f'{name}: {source.options_file}' for name, source in methods if isinstance(source, NetworkConfig)]
    if configs:
        notes.append('--configs networks (network_g and path of): ' + ', '.join(configs) + '.')
    if left_out:
        notes.append('Images NIQE cannot score (under 96x96 px, flat) are left out of the mean and named in the '
                     'log; left out: ' + ', '.join(left_out) + '.')
    fmt = {f'{s}_s': '.1f' for s in sets}
    md = write_table(rows, columns, osp.join(out, 'table1_niqe.md'), osp.join(out, 'table1_niqe.csv'),
                     'Table 1: NIQE on the unpaired low-light sets', notes, fmt)
    return rows, md
