"""The project's own trained weights, in ``model_zoo/`` (shipped in the package, see
:mod:`sclle_basicsr.utils.package_files`): bare DCE-Net state dicts (the EMA weights), each with the command that
trained it, its NIQE per set through the Table 1 protocol and its sha256, kept in ``model_zoo/index.json``;
``model_zoo/README.md`` is generated from that index, so the table cannot drift from it.

    python -m sclle_basicsr.study.model_zoo add --study_dir experiments/ablation_study --method full_wo_Lsc \\
        --name sclle_full_recipe_wo_Lsc --command "python scripts/run_ablation_study.py"
    python -m sclle_basicsr.study.model_zoo verify [--names ...] [--max_images N]   # sha256, then NIQE recomputed

``add`` takes the weights and NIQE a study scored (``<study_dir>/niqe/<method>.json``) and refuses a checkpoint
that changed since it was scored.  ``verify`` checks every file's sha256 and recomputes NIQE from the committed
files; a set off by more than ``--tolerance`` fails.
"""
import argparse
import io
import json
import os.path as osp
import sys

import torch
import yaml

from sclle_basicsr import evaluation as ev
from sclle_basicsr.inference import read_dcenet_state_dict
from sclle_basicsr.study.ablation_study import sha256_of
from sclle_basicsr.utils.assets import asset_path
from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.checkpoints import CheckpointError
from sclle_basicsr.utils.package_files import ZOO_DIR

INDEX, README = 'index.json', 'README.md'
TOLERANCE = 0.005  # NIQE is logged with 4 decimals; other CPUs round convolutions differently


class ZooError(ValueError):
    """A zoo entry that cannot be added or does not verify (the message names the file)."""


def read_index(zoo_dir=ZOO_DIR):
    path = osp.join(zoo_dir, INDEX)
    if not osp.isfile(path):
        return []
    with open(path) as f:
        text = f.read()
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as err:
        restore = '; git checkout -- model_zoo/index.json restores it' if osp.abspath(zoo_dir) == ZOO_DIR else ''
        raise ZooError(f'{path} is not valid JSON (line {err.lineno}, column {err.colno}: {err.msg}; truncated?)'
                       f'{restore}') from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ZooError(f'{path} must hold a list of entries, got {type(entries).__name__}')
    return entries


def write_index(entries, zoo_dir=ZOO_DIR):
    write_atomic(osp.join(zoo_dir, INDEX), json.dumps(entries, indent=1) + '\n')
    write_atomic(osp.join(zoo_dir, README), readme(entries))


def readme(entries):
    sets = list(entries[0]['niqe']) if entries else list(ev.LLE_SETS) + ['average']
    lines = ['# Model zoo', '',
             'DCE-Net weights trained by this project: bare state dicts of the EMA weights, loadable by `sclle-enhance '
             '--model_path`, `Enhancer` and `pretrain_network_g` (with `param_key_g: ~`). NIQE (lower is better) is '
             'the Table 1 protocol (`scripts/eval_table1_niqe.py`) on the five sets of the shared assets. This file is '
             'generated from `index.json` by `python -m sclle_basicsr.study.model_zoo add`; '
             '`python -m sclle_basicsr.study.model_zoo verify` checks every sha256 and recomputes the NIQE from these '
             'files. '
             'How the runs were made and what they show: `docs/reproduction.md`.', '',
             '| file | trained by | iterations | ' + ' | '.join(sets) + ' | sha256 |',
             '|---|---|---|' + '---|' * len(sets) + '---|']
    for e in entries:
        niqe = ' | '.join(f'{e["niqe"][s]:.4f}' for s in sets)
        lines.append(f'| `{e["file"]}` | `{e["command"]}` | {e["iterations"]} | {niqe} | `{e["sha256"][:16]}…` |')
    notes = [f'- `{e["file"]}`: {e["notes"]}' for e in entries if e.get('notes')]
    return '\n'.join(lines + ([''] + notes if notes else [])) + '\n'


def bare_state_dict_bytes(checkpoint):
    """The EMA weights of a BasicSR checkpoint (``params_ema``, else ``params``) as a bare saved state dict."""
    state = read_dcenet_state_dict(checkpoint)[0]
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu().clone() for k, v in state.items()}, buffer)
    return buffer.getvalue()


def add(study_dir, method, name, command, zoo_dir=ZOO_DIR, notes=''):
    """Copy ``method``'s weights from a scored study into the zoo as ``<name>.pth`` and index them."""
    scored = osp.join(study_dir, 'niqe', f'{method}.json')
    if not osp.isfile(scored):
        raise ZooError(f'{scored} not found: run the study (or its scoring) for {method} first (option --method)')
    with open(scored) as f:
        cache = json.load(f)
    checkpoint = cache['settings']['weights']
    if not checkpoint or sha256_of(checkpoint) != cache['settings']['sha256']:
        raise ZooError(f'{checkpoint} changed since {scored} scored it; run the study again to rescore it')
    if cache['settings'].get('max_images') is not None:
        raise ZooError(f'{scored} scored only {cache["settings"]["max_images"]} image(s) per set; the zoo publishes '
                       'NIQE on the full sets')
    with open(osp.join(study_dir, 'options', f'ablation_{method}.yml')) as f:
        iterations = yaml.safe_load(f)['train']['total_iter']
    data = bare_state_dict_bytes(checkpoint)
    file = f'{name}.pth'
    write_atomic(osp.join(zoo_dir, file), data)
    entry = {'file': file, 'command': command, 'iterations': iterations, 'niqe': cache['niqe'],
             'sha256': sha256_of(osp.join(zoo_dir, file)), 'notes': notes}
    entries = [e for e in read_index(zoo_dir) if e['file'] != file] + [entry]
    write_index(entries, zoo_dir)
    return entry


def check_files(zoo_dir=ZOO_DIR, names=None):
    """sha256 and DCE-Net strict load of every (or each named) entry; returns the entries."""
    entries = [e for e in read_index(zoo_dir) if names is None or e['file'] in names or e['file'][:-4] in names]
    for e in entries:
        path = osp.join(zoo_dir, e['file'])
        if not osp.isfile(path):
            raise ZooError(f'{path} listed in {osp.join(zoo_dir, INDEX)} is missing')
        if sha256_of(path) != e['sha256']:
            raise ZooError(f'{path}: sha256 {sha256_of(path)} differs from the index ({e["sha256"]})')
        try:
            read_dcenet_state_dict(path)
        except CheckpointError as err:
            raise ZooError(str(err)) from err
    return entries


def verify(zoo_dir=ZOO_DIR, names=None, sets=ev.LLE_SETS, dataroot=None, max_images=None, out=None,
           tolerance=TOLERANCE, log=print):
    """Recompute NIQE from the zoo's files; returns ``[(file, set, published, measured)]``, raises on a mismatch."""
    entries = check_files(zoo_dir, names)
    out = ev.make_output_dir(out or ev.default_out('model_zoo_verify'), overwrite=True)
    methods = [(e['file'], osp.join(zoo_dir, e['file'])) for e in entries]
    rows, _ = ev.run_table1(methods, out, sets, dataroot or asset_path('lle_testsets'), max_images, log=log,
                            metrics=('niqe',))
    compared, wrong = [], []
    for e, row in zip(entries, rows):
        for s in sets:
            compared.append((e['file'], s, e['niqe'][s], row[s]))
            if max_images is None and abs(row[s] - e['niqe'][s]) > tolerance:
                wrong.append(f'{e["file"]} {s}: published {e["niqe"][s]:.4f}, measured {row[s]:.4f}')
    if wrong:
        raise ZooError('NIQE differs from model_zoo/index.json by more than {}: {}'.format(tolerance, '; '.join(wrong)))
    return compared


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='action', required=True)
    a = sub.add_parser('add', help='copy a scored study run into the zoo')
    a.add_argument('--study_dir', required=True)
    a.add_argument('--method', required=True, help='run name in the study (its niqe/<method>.json)')
    a.add_argument('--name', required=True, help='file name in the zoo, without .pth')
    a.add_argument('--command', required=True, help='the command that trained it, for the table')
    a.add_argument('--notes', default='')
    v = sub.add_parser('verify', help='sha256 of every file, then NIQE recomputed')
    v.add_argument('--names', nargs='+', default=None)
    v.add_argument('--sets', nargs='+', default=list(ev.LLE_SETS))
    v.add_argument('--dataroot', default=None)
    v.add_argument('--max_images', type=int, default=None, help='first N images per set (no comparison)')
    v.add_argument('--tolerance', type=float, default=TOLERANCE)
    args = p.parse_args(argv)
    try:
        if args.action == 'add':
            print(json.dumps(add(args.study_dir, args.method, args.name, args.command, notes=args.notes), indent=1))
        else:
            for file, s, published, measured in verify(names=args.names, sets=args.sets, dataroot=args.dataroot,
                                                       max_images=args.max_images, tolerance=args.tolerance):
                print(f'{file} {s}: published {published:.4f}, measured {measured:.4f}')
            print('model zoo verified')
    except (ZooError, ev.EvaluationError, OSError) as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
