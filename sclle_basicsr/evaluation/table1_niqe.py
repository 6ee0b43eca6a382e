"""Table 1: NIQE, UNIQUE and LOE on the five unpaired low-light sets (DICM, LIME, MEF, NPE, VV) through BasicSR's
test runner.

These sets have no ground truth, so the paper scores them with no-reference metrics (NIQE, lower is better, and
UNIQUE, higher is better); LOE (lower is better) adds how much an enhancer changes the lightness order of its input.
They are scored by BasicSR's own runner so that the numbers are the ones a BasicSR user gets from a test option
file. One BasicSR test option file is generated per network into ``<out>/options/`` (a DCE-Net checkpoint, or the
``network_g`` and weights of a ``--configs`` option file), the runner (``basicsr.test.test_pipeline`` with the output
folder as root) is run in a fresh process, and each metric per set is parsed from its log (``# niqe: x``, 4
decimals), the seconds per set from its timestamps (``Testing <set>...`` to ``Validation <set>``).

UNIQUE needs its weights (:mod:`sclle_basicsr.metrics.unique_metric`): given (``unique_weights``), or found through
``$SCLLE_UNIQUE_WEIGHTS`` or pyiqa's cache; when none are found the column is marked unavailable with the reason and
the other metrics are still computed.

``identity`` (the input images) is not a network: its metrics are computed directly, with the same metric options,
on the images as read by OpenCV (3-channel BGR uint8), which is what the runner computes for an enhancer returning
its input (its LOE is 0: the input compared with itself).
"""
import datetime
import os
import os.path as osp
import re
import time

import cv2
import numpy as np
import yaml

from sclle_basicsr.evaluation.common import EvaluationError, write_table
from sclle_basicsr.evaluation.methods import NetworkConfig
from sclle_basicsr.inference import read_dcenet_state_dict
from sclle_basicsr.inference.tiling import TILE_PAD
from sclle_basicsr.metrics.unscorable import mean_or_nan, score_or_none, size_problem
from sclle_basicsr.utils.assets import asset_path
from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.image_files import list_images, walk_files

LLE_SETS = ('DICM', 'LIME', 'MEF', 'NPE', 'VV')
NIQE_METRIC = {'type': 'calculate_niqe', 'crop_border': 0, 'input_order': 'HWC', 'convert_to': 'y', 'better': 'lower'}
LOE_METRIC = {'type': 'calculate_loe', 'better': 'lower'}
TABLE1_METRICS = ('niqe', 'unique', 'loe')  # in the table's order
LABELS = {'niqe': 'NIQE', 'unique': 'UNIQUE', 'loe': 'LOE'}
# DCE-Net in 512-pixel tiles with the default overlap: the same output as the whole image, with
# memory bounded by the tile: whole, a 4 MP VV image took the runner process to 7.5 GB resident.
DCENET_TILING = {'tile': 512, 'tile_pad': TILE_PAD}


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


def unique_availability(unique_weights=None):
    """``(weights, None)`` when Table 1 can compute UNIQUE, else ``(None, reason)``.

    ``unique_weights`` given (``--unique_weights``): that file, which must load. Otherwise the weights UNIQUE finds by
    itself (``$SCLLE_UNIQUE_WEIGHTS``, pyiqa's cache); none found is the reason the column is unavailable, a file
    found but unusable is an error. Either way the file is loaded once here, before any image is scored."""
    from sclle_basicsr.metrics import MetricWeightsError, find_unique_weights, load_unique
    try:
        path = find_unique_weights(unique_weights)
    except MetricWeightsError as err:
        if unique_weights:
            raise EvaluationError(f'--unique_weights: {err}') from err
        return None, str(err)
    try:
        load_unique(path)
    except MetricWeightsError as err:
        where = '--unique_weights' if unique_weights else "found through $SCLLE_UNIQUE_WEIGHTS or pyiqa's cache"
        raise EvaluationError(f'{err} ({where})') from err
    return path, None


def metric_options(metrics=TABLE1_METRICS, unique_weights=None):
    """``{name: BasicSR metric options}`` of Table 1 (the runner's ``val.metrics``; identity is scored with the same):
    the ``metrics`` asked for, UNIQUE only with ``unique_weights``."""
    unknown = [m for m in metrics if m not in TABLE1_METRICS]
    if unknown or 'niqe' not in metrics:
        raise EvaluationError(f'Table 1 metrics must include niqe and be among {", ".join(TABLE1_METRICS)}, got '
                              f'{", ".join(metrics)}')
    options = {'niqe': dict(NIQE_METRIC), 'loe': dict(LOE_METRIC)}
    if unique_weights:
        options['unique'] = {'type': 'calculate_unique', 'weights': unique_weights}
    return {m: options[m] for m in TABLE1_METRICS if m in metrics and m in options}


def table1_options(name, source, folders, save_img=False, num_gpu='auto', metrics=TABLE1_METRICS,
                   unique_weights=None):
    """The BasicSR test options (a dict) that score ``source`` on ``folders`` with :func:`metric_options`.

    ``SCLLLEModel`` is SRModel's test and validation for any ``network_g`` (NIQE and UNIQUE need no ground truth;
    LOE gets the low-light input), with images a metric cannot score named and left out of its mean instead of
    ending the run.  A DCE-Net checkpoint gets its width and iterations from the weights; a :class:`NetworkConfig`
    brings its own ``network_g`` and ``path`` and runs on the ``torch`` backend.
    """
    val = {'save_img': bool(save_img), 'suffix': None, 'pbar': False,
           'metrics': metric_options(metrics, unique_weights)}
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


def write_table1_options(path, name, source, folders, save_img=False, num_gpu='auto', metrics=TABLE1_METRICS,
                         unique_weights=None):
    """:func:`table1_options` written to ``path`` as YAML; returns ``path``."""
    options = table1_options(name, source, folders, save_img, num_gpu, metrics, unique_weights)
    write_atomic(path, '# generated by sclle_basicsr.evaluation (Table 1); run with the output folder as BasicSR '
                       'root path\n' + yaml.safe_dump(options, sort_keys=False))
    return path


_LOG_LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: (.*)$')
_VALUE = r'(-?[0-9.]+|nan|inf)'


def parse_runner_log(text, sets, metrics=('niqe',)):
    """``{set: {metric: mean, ..., 'seconds': s, 'left_out': {metric: count}}}`` from a BasicSR test log
    (``Testing <set>...`` ... ``Validation <set>`` with ``# <metric>: x``; images a metric could not score are
    counted from the model's warning)."""
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
        if not m or m.group(1) not in sets:
            continue
        name, body = m.group(1), '\n'.join(rest)
        found = {metric: re.search(rf'# {metric}: {_VALUE}', body) for metric in metrics}
        if not all(found.values()):
            continue
        result = {metric: float(value.group(1)) for metric, value in found.items()}
        result['seconds'] = (stamp - started[name]).total_seconds() if name in started else float('nan')
        result['left_out'] = {}
        for metric in metrics:
            left_out = re.search(rf'{metric} of {re.escape(name)}: (\d+) of \d+ image\(s\) left out', text)
            result['left_out'][metric] = int(left_out.group(1)) if left_out else 0
        results[name] = result
    missing = [s for s in sets if s not in results]
    if missing:
        raise EvaluationError(f'no {", ".join(LABELS.get(m, m) for m in metrics)} logged for {", ".join(missing)}')
    return results


def run_through_runner(name, source, folders, out, save_img=False, imports=(), log=print, metrics=('niqe',),
                       unique_weights=None):
    """Generate ``<out>/options/test_<name>.yml``, run BasicSR's test runner on it (``imports``: modules it imports
    first), return ``(parsed log, option file, log file)``."""
    os.makedirs(osp.join(out, 'options'), exist_ok=True)
    opt_file = write_table1_options(osp.join(out, 'options', f'test_{name}.yml'), name, source, folders,
                                    save_img=save_img, metrics=metrics, unique_weights=unique_weights)
    logged = list(metric_options(metrics, unique_weights))
    from sclle_basicsr.runner.basicsr_runner import run_pipeline
    returncode, tail = run_pipeline(  # progress: the runner's per-set lines, as they come
        'test', out, [arg for module in imports for arg in ('--import', module)] + ['-opt', opt_file],
        show=r'INFO: (Testing .*\.\.\.|Number of test images)|# \w+:|cannot score|left out',
        log=lambda line: log(f'[table1] {name} runner: {line.strip()}'))
    log_name = re.compile(rf'test_{re.escape(name)}_.*\.log')
    results = osp.join(out, 'results', name)
    logs = sorted((p for p in walk_files(results) if log_name.fullmatch(osp.basename(p))), key=osp.getmtime)
    if returncode != 0:
        raise EvaluationError(f'BasicSR test runner failed for {name} ({opt_file}):\n{tail[-3000:]}')
    if not logs:
        raise EvaluationError(f'BasicSR test runner wrote no log for {name} under {osp.join(out, "results")}')
    with open(logs[-1]) as f:
        return parse_runner_log(f.read(), list(folders), logged), opt_file, logs[-1]


def identity_scores(folders, metrics=('niqe',), unique_weights=None, log=print):
    """``{set: {metric: mean, ..., 'seconds': s, 'left_out': {metric: count}}}`` of the input images themselves,
    scored with :func:`metric_options` through BasicSR's ``calculate_metric`` (LOE: the input against itself).

    An image a metric cannot score is logged by name and left out of that metric's mean, as the runner does.
    """
    from basicsr.metrics import calculate_metric

    from sclle_basicsr.metrics import INPUT_KEY, takes_input
    options = metric_options(metrics, unique_weights)
    results = {}
    for name, folder in folders.items():
        start = time.perf_counter()
        values = {metric: [] for metric in options}
        left_out = dict.fromkeys(options, 0)
        readable = 0
        for path in list_images(folder):
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                continue  # the runner's dataset skips unreadable files too
            readable += 1
            for metric, opt in options.items():
                data = dict({'img': img}, **({INPUT_KEY: img} if takes_input(opt['type']) else {}))
                value = score_or_none(metric, lambda: calculate_metric(data, opt), path, log,
                                      size_problem(opt, img.shape))
                if value is None:
                    left_out[metric] += 1
                else:
                    values[metric].append(value)
        if not readable:
            raise EvaluationError(f'no readable image in {folder}')
        for metric, count in left_out.items():
            if count:
                log(f'{metric} of {name}: {count} of {readable} image(s) left out (cannot be scored)')
        results[name] = dict({metric: mean_or_nan(v) for metric, v in values.items()},
                             seconds=time.perf_counter() - start, left_out=left_out)
    return results


def set_column(set_name, metric):
    """The table's column of ``metric`` on ``set_name``: NIQE under the set's name, the others suffixed."""
    return set_name if metric == 'niqe' else f'{set_name}_{LABELS[metric]}'


def average_column(metric):
    return 'average' if metric == 'niqe' else f'{LABELS[metric]}_average'


def run_table1(methods, out, sets=LLE_SETS, dataroot=None, max_images=None, save_img=False, log=print, imports=(),
               metrics=TABLE1_METRICS, unique_weights=None):
    """NIQE, UNIQUE and LOE per set for each ``(name, source)`` in ``methods`` (see :mod:`.methods`); writes
    ``table1_niqe.{md,csv}``. ``imports``: modules the runner imports first (archs of your own, ``--imports``);
    ``metrics``: a subset of :data:`TABLE1_METRICS` with ``niqe``; ``unique_weights``: see
    :func:`unique_availability`.

    Returns ``(rows, markdown)``; each row has ``method``, ``<set>`` NIQE and ``average`` (mean of the per-set means),
    ``<set>_UNIQUE`` / ``UNIQUE_average`` and ``<set>_LOE`` / ``LOE_average`` (``None`` where not computed) and
    ``<set>_s`` seconds.
    """
    dataroot = dataroot or asset_path('lle_testsets')
    sets = list(sets)
    metric_options(metrics)  # checks the names before anything runs
    unknown = [s for s in sets if not osp.isdir(osp.join(dataroot, s))]
    if unknown:
        raise EvaluationError(f'set folder(s) {", ".join(unknown)} not found under {dataroot} (option --dataroot)')
    unique_reason = None
    if 'unique' in metrics:
        unique_weights, unique_reason = unique_availability(unique_weights)
        if unique_reason:
            log(f'[table1] UNIQUE unavailable (the other metrics are computed): {unique_reason}')
    scored = list(metric_options(metrics, unique_weights))
    folders = prepare_set_folders(dataroot, sets, out, max_images)
    rows, left_out = [], []
    for name, source in methods:
        start = time.perf_counter()
        if source is None:
            log(f'[table1] {name}: {", ".join(LABELS[m] for m in scored)} of the input images (calculate_metric)')
            res = identity_scores(folders, metrics, unique_weights, log=lambda msg: log(f'[table1] identity: {msg}'))
        else:
            log(f'[table1] {name}: BasicSR test runner on '
                + (source.where if isinstance(source, NetworkConfig) else source))
            res, opt_file, log_file = run_through_runner(name, source, folders, out, save_img, imports, log=log,
                                                         metrics=metrics, unique_weights=unique_weights)
            log(f'[table1] {name}: options {opt_file}, log {log_file}')
        row = {'method': name}
        for metric in (m for m in TABLE1_METRICS if m in metrics):
            values = [res[s][metric] if metric in scored else None for s in sets]
            row.update({set_column(s, metric): v for s, v in zip(sets, values)})
            row[average_column(metric)] = float(np.mean(values)) if metric in scored else None
        for s in sets:
            row[f'{s}_s'] = res[s]['seconds']
            log(f'[table1] {name} {s}: ' + ', '.join(f'{LABELS[m]} {res[s][m]:.4f}' for m in scored)
                + f' ({res[s]["seconds"]:.1f} s)')
            left_out += [f'{name} {s} {LABELS[m]}: {n}' for m, n in res[s]['left_out'].items() if n]
        log(f'[table1] {name}: average NIQE {row["average"]:.4f}, {time.perf_counter() - start:.1f} s in all')
        rows.append(row)
    columns = ['method']
    for metric in (m for m in TABLE1_METRICS if m in metrics):
        columns += [set_column(s, metric) for s in sets] + [average_column(metric)]
    columns += [f'{s}_s' for s in sets]
    counts = ', '.join(f'{s} {len(list_images(folders[s]))}' for s in sets)
    notes = [f'Images: {counts}' + (f' (first {max_images} per set, --max_images)' if max_images else '')
             + f'; data {dataroot}.',
             'NIQE (lower is better): basicsr.metrics.calculate_niqe, crop_border 0, Y channel; columns <set> and '
             'average.']
    if 'unique' in metrics:
        notes.append(f'UNIQUE (higher is better; Zhang et al., TIP 2021): weights {unique_weights}; columns '
                     '<set>_UNIQUE, UNIQUE_average.' if unique_weights else
                     f'UNIQUE: unavailable, not computed: {unique_reason}')
    if 'loe' in metrics:
        notes.append('LOE (lower is better): lightness order error of the output against the low-light input, '
                     'lightness max(R, G, B) shrunk to 50 pixels on the shorter side; identity is 0 by definition; '
                     'columns <set>_LOE, LOE_average.')
    notes += ['Networks: BasicSR test runner (SCLLLEModel test model, generated options in options/), metrics parsed '
              'from its log (4 decimals); DCE-Net checkpoints on the inference backend auto, --configs networks on '
              'torch. identity: the metrics of the input images computed directly with calculate_metric (not '
              'through the runner).',
              'average: mean of the per-set means; <set>_s: seconds per set, all metrics included (runner log '
              'timestamps; identity: wall time).']
    configs = [f'{name}: {source.options_file}' for name, source in methods if isinstance(source, NetworkConfig)]
    if configs:
        notes.append('--configs networks (network_g and path of): ' + ', '.join(configs) + '.')
    if left_out:
        notes.append('Images a metric cannot score (NIQE: under 96x96 px or flat; UNIQUE: under 32x32 px) are left '
                     'out of its mean and named in the log; left out: ' + ', '.join(left_out) + '.')
    fmt = dict({f'{s}_s': '.1f' for s in sets}, **{set_column(s, 'loe'): '.2f' for s in sets},
               LOE_average='.2f')
    md = write_table(rows, columns, osp.join(out, 'table1_niqe.md'), osp.join(out, 'table1_niqe.csv'),
                     'Table 1: NIQE, UNIQUE and LOE on the unpaired low-light sets', notes, fmt)
    return rows, md
