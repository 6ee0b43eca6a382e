"""The paper's Table 3 ablation study at CPU scale: train the ablations that need no segmentor with one budget and
one seed, score NIQE on the five sets (Table 1 protocol) beside the input and the released weights, draw one
comparison sheet.  Stopped, it continues where it was when run again with the same --study_dir.

    python scripts/run_ablation_study.py [--iters 1000 --crop 192 --batch 2 --precision auto --jobs N]
        [--runs full_wo_Lsc wo_Lc ...] [--study_dir experiments/ablation_study] [--sets DICM LIME] [--max_images N]

Writes under --study_dir: data/, options/, experiments/ablation_<run>/ (BasicSR's run folders), niqe/<method>.json,
table3.md, table3.csv, compare.png.
"""
import argparse
import os
import sys

import sclle_basicsr  # noqa: F401  (compat fixes, registration)
from sclle_basicsr import evaluation as ev
from sclle_basicsr.study import ablation_study as study
from sclle_basicsr.utils.assets import REPO_ROOT


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--iters', type=int, default=1000, help='training iterations of every run')
    p.add_argument('--crop', type=int, default=192, help='training crop size')
    p.add_argument('--batch', type=int, default=2, help='training batch size')
    p.add_argument('--precision', default='auto', choices=('fp32', 'bf16', 'auto'),
                   help='auto: bf16 autocast where the CPU has native bf16 (AVX512-BF16 / AMX), else fp32')
    p.add_argument('--seed', type=int, default=0, help='manual_seed of every run')
    p.add_argument('--runs', nargs='+', default=list(study.RUNS), choices=list(study.RUNS), help='a subset of runs')
    p.add_argument('--study_dir', default=f'{REPO_ROOT}/experiments/ablation_study', help='where everything goes')
    p.add_argument('--sets', nargs='+', default=list(ev.LLE_SETS), help='test sets for NIQE and the sheet')
    p.add_argument('--dataroot', default=None, help='folder holding the sets (default: the assets\' lle_testsets)')
    p.add_argument('--max_images', type=int, default=None, help='first N images per set for NIQE (quick runs)')
    p.add_argument('--jobs', type=int, default=os.cpu_count() or 1,
                   help='training runs side by side, the cores shared among them (default: one per core)')
    p.add_argument('--set', dest='overrides', nargs='+', default=[], metavar='KEY:SUBKEY=VALUE',
                   help='change the recipe of every run, e.g. train:optim_g:lr=1e-3 (VALUE is YAML)')
    p.add_argument('--base_options', default=study.BASE_OPTIONS, help='training recipe the runs start from')
    args = p.parse_args(argv)
    try:
        md = study.run_study(args.study_dir, args.runs, args.iters, args.crop, args.batch, args.precision, args.seed,
                             args.sets, args.max_images, args.dataroot, args.base_options, jobs=args.jobs,
                             overrides=args.overrides)
    except (study.StudyError, ev.EvaluationError, OSError) as err:
        sys.exit(f'error: {err}')
    print(md)


if __name__ == '__main__':
    main()
