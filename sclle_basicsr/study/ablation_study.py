"""The paper's Table 3 ablation study at CPU scale, in one resumable command (``scripts/run_ablation_study.py``).

Every run gets the same budget (iterations, crop, batch, precision) and seed; L_sc is off in all of them (no
Cityscapes DeepLabv3+ checkpoint exists offline), so ``full_wo_Lsc`` is the full recipe of
``options/train/train_SCLLLE_assets_cpu.yml`` and each ablation differs from it only where its name says.
Steps, each skipped when its result exists, under ``<study_dir>``:

1. ``data/``: the SICE subset split into ``sice/{positive,under,over}``, ``lq/`` links to the unlabelled low-light
   inputs and the under-exposed SICE images;
2. ``options/ablation_<run>.yml``: BasicSR training options (plain YAML);
3. ``experiments/ablation_<run>/``: BasicSR's run folder (``train_pipeline`` with ``<study_dir>`` as root,
   ``--auto_resume``); a run with ``models/net_g_latest.pth`` is done;
4. ``niqe/<method>.json``: NIQE per set through the Table 1 protocol (:func:`sclle_basicsr.evaluation.run_table1`)
   for the input, each run's EMA weights and the released SCL-LLE and Zero-DCE weights; ``table3.md`` / ``.csv``;
5. ``compare.png``: the first image of each set, input | each run | released SCL-LLE.
"""
import copy
import hashlib
import json
import os
import os.path as osp
import re
from concurrent.futures import ThreadPoolExecutor

import yaml

from sclle_basicsr import evaluation as ev
from sclle_basicsr.inference.backends import native_bf16
from sclle_basicsr.runner.basicsr_runner import run_pipeline
from sclle_basicsr.study.ablations import ABLATIONS, ablated
from sclle_basicsr.utils.assets import ENV_VAR, asset_path
from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.image_files import list_images
from sclle_basicsr.utils.package_files import option_file

BASE_OPTIONS = option_file('train/train_SCLLLE_assets_cpu.yml')
FULL = 'full_wo_Lsc'  # the recipe itself: no L_sc on CPU (no Cityscapes segmentor offline)
RUNS = {FULL: 'the full recipe without L_sc', **{k: v for k, v in ABLATIONS.items() if k != 'wo_Lsc'}}
INPUT, SCLLE_RELEASED, ZERODCE_RELEASED = 'input', 'sclle_released', 'zerodce_released'
REFERENCE_WEIGHTS = {SCLLE_RELEASED: ('weights', 'sclle_official.pth'),
                     ZERODCE_RELEASED: ('weights', 'zerodce_official.pth')}
VGG_WEIGHTS = ('weights', 'vgg16_imagenet_caffe_bgr_features.pth')
FINAL_CHECKPOINT = 'net_g_latest.pth'

# Reference data, not results: NIQE of Liang et al., AAAI 2022, Table 3 (columns DICM, LIME, MEF, VV, NPE, Average
# in the paper's order). "Ours" is the full method with L_sc, the released SCL-LLE weights.
PAPER_SETS = ('DICM', 'LIME', 'MEF', 'VV', 'NPE')
PAPER_TABLE3_NIQE = {
    'Input': (4.26, 4.36, 4.26, 3.52, 4.32, 4.13),
    'w/o L_c': (4.31, 4.36, 4.25, 4.10, 4.28, 4.27),
    'w/o L_sc': (3.53, 3.85, 3.32, 3.21, 3.98, 3.49),
    'w/o L_fr': (3.54, 3.88, 3.32, 3.18, 3.97, 3.50),
    'w/o Neg. samples': (3.55, 3.84, 3.36, 3.14, 3.95, 3.49),
    'w/o overexp. Neg.': (3.59, 3.91, 3.36, 3.15, 4.12, 3.54),
    'w/o underexp. Neg.': (4.58, 4.52, 4.69, 3.58, 4.36, 4.38),
    'Ours': (3.51, 3.78, 3.31, 3.16, 3.88, 3.46),
}
PAPER_ROW = {INPUT: 'Input', 'wo_Lc': 'w/o L_c', 'full_wo_Lsc': 'w/o L_sc', 'wo_Lfr': 'w/o L_fr',
             'wo_neg': 'w/o Neg. samples', 'wo_over_neg': 'w/o overexp. Neg.', 'wo_under_neg': 'w/o underexp. Neg.',
             SCLLE_RELEASED: 'Ours'}


class StudyError(ValueError):
    """Missing assets or bad study settings (the message names the path or the option)."""


def resolve_precision(precision):
    """``fp32`` or ``bf16`` (``auto``: bf16 where the CPU has native bf16)."""
    if precision == 'auto':
        return 'bf16' if native_bf16() else 'fp32'
    if precision not in ('fp32', 'bf16'):
        raise StudyError(f'--precision must be fp32, bf16 or auto, got {precision!r}')
    return precision


def _require_folder(path):
    if not osp.isdir(path) or not list_images(path):
        raise StudyError(f'asset folder {path} is missing or holds no images (set {ENV_VAR} to the shared assets '
                         'folder)')
    return path


# ----------------------------------------------------------------------------------------------------------------
# 1. data


def prepare_data(data_dir, log=print):
    """``{'lq', 'positive', 'under', 'over'}`` folders under ``data_dir``, made from the shared assets (idempotent:
    existing links are kept)."""
    from sclle_basicsr.data.exposure_split import split_exposures
    sice_src = _require_folder(asset_path('sice_part1_subset'))
    lowlight = [_require_folder(asset_path('lowlight_unlabelled', name)) for name in ('LOL_low', 'BDD_night')]
    sice = osp.join(data_dir, 'sice')
    folders = {c: osp.join(sice, c) for c in ('positive', 'under', 'over')}
    if not all(osp.isdir(f) and list_images(f) for f in folders.values()):
        result = split_exposures(sice_src, sice)
        log(f'[study] split {sice_src} into {sice}: {result.counts}')
    folders['lq'] = osp.join(data_dir, 'lq')
    os.makedirs(folders['lq'], exist_ok=True)
    for src in lowlight + [folders['under']]:
        for path in list_images(src):
            link = osp.join(folders['lq'], f'{osp.basename(src)}_{osp.basename(path)}')
            if not osp.lexists(link):
                os.symlink(osp.realpath(path), link)
    for key, folder in folders.items():
        if not list_images(folder):
            raise StudyError(f'no {key} images in {folder} (made from {sice_src}; check the exposure bands)')
    return folders


# ----------------------------------------------------------------------------------------------------------------
# 2. options


def load_options(path=BASE_OPTIONS):
    """An option file as plain dicts (BasicSR's ``ordered_yaml`` loader, so ``!!float`` and order read as BasicSR
    reads them)."""
    from basicsr.utils.options import ordered_yaml
    if not osp.isfile(path):
        raise StudyError(f'option file {path} (--base_options) not found')
    with open(path) as f:
        opt = yaml.load(f, Loader=ordered_yaml()[0])
    return json.loads(json.dumps(opt))


def common_options(base, folders, iters, crop, batch, seed, precision):
    """The options every run shares: the base recipe with the study's data, budget, seed and precision, no L_sc."""
    opt = copy.deepcopy(base)
    train_set = opt['datasets']['train']
    train_set.update(dataroot_lq=folders['lq'], dataroot_pos=folders['positive'],
                     dataroot_neg=[folders['under'], folders['over']], crop_size=crop, batch_size_per_gpu=batch)
    opt['manual_seed'] = seed
    opt['num_gpu'] = 0
    opt['path'] = dict(opt.get('path') or {}, pretrain_network_g=None, resume_state=None)
    train = opt['train']
    train['total_iter'] = iters
    train.pop('semantic_opt', None)
    train.pop('amp', None)
    if precision == 'bf16':
        train['amp'] = {'dtype': 'bf16'}
    vgg = train.get('vgg_opt')
    if vgg is not None and vgg.get('weights_format') != 'random':
        vgg['weights_path'] = asset_path(*VGG_WEIGHTS)
        if not osp.isfile(vgg['weights_path']):
            raise StudyError(f'VGG-16 weights {vgg["weights_path"]} not found (set {ENV_VAR} to the shared assets '
                             'folder)')
    opt['logger']['save_checkpoint_freq'] = max(1, iters // 6)  # a kill loses at most a sixth of a run
    opt['logger']['print_freq'] = max(1, min(opt['logger'].get('print_freq', 25), iters // 20 or 1))
    return opt


def apply_overrides(opt, overrides):
    """Set ``KEY:SUBKEY=VALUE`` entries (BasicSR's ``--force_yml`` syntax, VALUE read as YAML) in ``opt``, so a
    recipe change lands in every run's options file."""
    for entry in overrides:
        keys, sep, text = entry.partition('=')
        if not sep or not keys:
            raise StudyError(f'--set {entry!r}: expected KEY:SUBKEY=VALUE, e.g. train:ema_decay=0.99')
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise StudyError(f'--set {entry!r}: the value is not YAML ({err})') from err
        if isinstance(value, str) and re.fullmatch(r'[-+]?\d+(\.\d*)?[eE][-+]?\d+', value):
            value = float(value)  # YAML 1.1 reads 1e-3 as a string; BasicSR's files write !!float 1e-3
        node, path = opt, keys.split(':')
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                raise StudyError(f'--set {entry!r}: {key} is not a section of the options')
            node = node[key]
        node[path[-1]] = value
    return opt


def run_options(common, run):
    """One run's options: ``common`` with the run's name and the one change the run's name says."""
    if run not in RUNS:
        raise StudyError(f'unknown run {run!r} (--runs): choose from {", ".join(RUNS)}')
    opt = copy.deepcopy(common) if run == FULL else ablated(common, run)
    opt['name'] = f'ablation_{run}'
    return opt


def write_options(path, opt):
    os.makedirs(osp.dirname(path), exist_ok=True)
    write_atomic(path, yaml.safe_dump(opt, sort_keys=False))
    return path


# ----------------------------------------------------------------------------------------------------------------
# 3. training


def run_dir(study_dir, run):
    """BasicSR's run folder: ``train_pipeline(root)`` puts it under ``<root>/experiments/<name>``."""
    return osp.join(study_dir, 'experiments', f'ablation_{run}')


def final_checkpoint(study_dir, run):
    return osp.join(run_dir(study_dir, run), 'models', FINAL_CHECKPOINT)


_PROGRESS = re.compile(r'\[.*iter:\s*[\d,]+.*\]|Start training|End of training|Resuming training|Traceback|Error')


def train_run(study_dir, run, opt_file, log=print, threads=None):
    """Train (or resume) one run through BasicSR's ``train_pipeline`` with ``study_dir`` as root, on ``threads``
    CPU threads (default: torch's)."""
    log(f'[study] {run}: training into {run_dir(study_dir, run)}' + (f' on {threads} thread(s)' if threads else ''))
    env = {'OMP_NUM_THREADS': str(threads)} if threads else None
    returncode, tail = run_pipeline('train', study_dir, ['-opt', opt_file, '--auto_resume'], show=_PROGRESS,
                                    log=lambda line: log(f'[study] {run}: {line}'), keep_lines=60, env=env)
    if returncode != 0:
        raise StudyError(f'training run {run} failed (exit {returncode}, options {opt_file}); last output:\n' + tail)
    checkpoint = final_checkpoint(study_dir, run)
    if not osp.isfile(checkpoint):
        raise StudyError(f'training run {run} ended without {checkpoint}')
    return checkpoint


# ----------------------------------------------------------------------------------------------------------------
# 4. NIQE and the table


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def score_method(study_dir, method, weights, sets, dataroot, max_images, log=print):
    """``{set: NIQE, 'average': mean}`` for one method, from ``niqe/<method>.json`` when it holds these settings."""
    cache = osp.join(study_dir, 'niqe', f'{method}.json')
    settings = {'weights': weights, 'sha256': weights and sha256_of(weights), 'sets': list(sets),
                'dataroot': osp.abspath(dataroot), 'max_images': max_images}
    if osp.isfile(cache):
        with open(cache) as f:
            cached = json.load(f)
        if cached.get('settings') == settings:
            return cached['niqe']
    out = ev.make_output_dir(osp.join(study_dir, 'niqe', 'work', method), overwrite=True)
    rows, _ = ev.run_table1([(method, weights)], out, sets, dataroot, max_images, log=log, metrics=('niqe',))
    niqe = {s: rows[0][s] for s in sets}
    niqe['average'] = rows[0]['average']
    write_atomic(cache, json.dumps({'settings': settings, 'niqe': niqe}, indent=1))
    log(f'[study] {method}: NIQE average {niqe["average"]:.4f} -> {cache}')
    return niqe


def paper_values(method, sets):
    row = PAPER_TABLE3_NIQE.get(PAPER_ROW.get(method))
    if row is None:
        return {}
    by_set = dict(zip(PAPER_SETS, row))
    values = {f'paper_{s}': by_set[s] for s in sets if s in by_set}
    values['paper_average'] = row[-1]
    return values


def write_table3(study_dir, scores, sets, budget):
    rows = [dict({'method': m}, **scores[m], **paper_values(m, sets)) for m in scores]
    columns = ['method'] + list(sets) + ['average'] + [f'paper_{s}' for s in sets] + ['paper_average']
    notes = [f'Budget of every run: {budget}. L_sc is off in every run (no Cityscapes segmentor checkpoint '
             'offline); full_wo_Lsc is the full recipe without it.',
             'NIQE (lower is better): the Table 1 protocol (sclle_basicsr.evaluation.run_table1), each run\'s final '
             'EMA weights; input = the images themselves; sclle_released / zerodce_released = the released weights.',
             'paper_*: Liang et al., AAAI 2022, Table 3 (full training budget; sclle_released is the paper\'s "Ours", '
             'trained with L_sc); paper_average is over all five sets.']
    return ev.write_table(rows, columns, osp.join(study_dir, 'table3.md'), osp.join(study_dir, 'table3.csv'),
                          'Table 3 at CPU scale: NIQE of the ablations', notes,
                          dict({f'paper_{s}': '.2f' for s in sets}, paper_average='.2f'))


# ----------------------------------------------------------------------------------------------------------------
# 5. the comparison sheet


def write_compare_sheet(path, images, methods, height=240):
    from sclle_basicsr.study.contact_sheet import enhancer_sheet, write_sheet
    write_sheet(path, enhancer_sheet(images, methods, height))
    return path


# ----------------------------------------------------------------------------------------------------------------


def train_runs(study_dir, pending, jobs, log=print):
    """Train ``pending`` (``[(run, options file)]``) ``jobs`` at a time, the CPU's cores shared among them.

    Why: one training step barely uses a second core.  On the 2-core Zen5, two single-threaded runs side by side
    took about 1.2 s per iteration each, one run on two threads 0.65 s (docs/reproduction.md).
    """
    jobs = max(1, min(jobs, len(pending)))
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    if jobs == 1:
        return {run: train_run(study_dir, run, opt_file, log) for run, opt_file in pending}
    with ThreadPoolExecutor(jobs) as pool:
        futures = {run: pool.submit(train_run, study_dir, run, opt_file, log, threads) for run, opt_file in pending}
        return {run: future.result() for run, future in futures.items()}


def run_study(study_dir, runs=tuple(RUNS), iters=1000, crop=192, batch=2, precision='auto', seed=0, sets=ev.LLE_SETS,
              max_images=None, dataroot=None, base_options=BASE_OPTIONS, log=print, jobs=1, overrides=()):
    """All five steps; returns the Markdown table.  Finished steps are skipped, so a rerun continues a stopped
    study.  ``jobs``: training runs side by side; ``overrides``: ``KEY:SUBKEY=VALUE`` changes of the recipe."""
    unknown = [r for r in runs if r not in RUNS]
    if unknown:
        raise StudyError(f'unknown run(s) {", ".join(unknown)} (--runs): choose from {", ".join(RUNS)}')
    if iters < 1 or crop < 8 or batch < 1:
        raise StudyError(f'--iters {iters}, --crop {crop}, --batch {batch}: need iters >= 1, crop >= 8, batch >= 1')
    study_dir = osp.abspath(study_dir)
    if dataroot:
        dataroot = osp.abspath(dataroot)
        missing = [s for s in sets if not list_images(osp.join(dataroot, s))]
        if missing:
            raise StudyError(f'no images for set(s) {", ".join(missing)} under {dataroot} (options --dataroot, --sets)')
    else:
        dataroot = asset_path('lle_testsets')
        for s in sets:
            _require_folder(osp.join(dataroot, s))
    references = {}
    for method, parts in REFERENCE_WEIGHTS.items():
        references[method] = asset_path(*parts)
        if not osp.isfile(references[method]):
            raise StudyError(f'released weights {references[method]} not found (set {ENV_VAR} to the shared assets '
                             'folder)')
    precision = resolve_precision(precision)
    budget = f'{iters} iterations, crop {crop}, batch {batch}, {precision}, seed {seed}' + ''.join(
        f', {entry}' for entry in overrides)
    log(f'[study] {study_dir}: runs {", ".join(runs)}; {budget}')

    folders = prepare_data(osp.join(study_dir, 'data'), log)
    common = apply_overrides(common_options(load_options(base_options), folders, iters, crop, batch, seed, precision),
                             overrides)
    checkpoints, pending = {}, []
    for run in runs:
        opt, opt_file = run_options(common, run), osp.join(study_dir, 'options', f'ablation_{run}.yml')
        if osp.isdir(run_dir(study_dir, run)) and osp.isfile(opt_file):
            with open(opt_file) as f:
                if yaml.safe_load(f) != opt:
                    raise StudyError(f'run {run} in {study_dir} was started with other settings ({opt_file}); '
                                     'give another --study_dir for another budget')
        write_options(opt_file, opt)
        checkpoint = final_checkpoint(study_dir, run)
        if osp.isfile(checkpoint):
            log(f'[study] {run}: done ({checkpoint})')
        else:
            pending.append((run, opt_file))
        checkpoints[run] = checkpoint
    checkpoints.update(train_runs(study_dir, pending, jobs, log))

    methods = [(INPUT, None)] + list(checkpoints.items()) + list(references.items())
    scores = {m: score_method(study_dir, m, w, sets, dataroot, max_images, log) for m, w in methods}
    md = write_table3(study_dir, scores, sets, budget)
    images = [list_images(osp.join(dataroot, s))[0] for s in sets]
    sheet = write_compare_sheet(osp.join(study_dir, 'compare.png'), images,
                                list(checkpoints.items()) + [(SCLLE_RELEASED, references[SCLLE_RELEASED])])
    log(f'[study] written {osp.join(study_dir, "table3.md")}, .csv and {sheet}')
    return md
