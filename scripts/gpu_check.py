"""The project's GPU figures in one command: ``make gpu-check`` (or ``python scripts/gpu_check.py``).

On a CUDA machine it runs the CUDA-marked tests (``pytest -m cuda``), times one training step per precision (batch
2x384^2, all four losses, synchronised), measures inference MP/s per precision and tile on a 12 MP image with its
peak memory and bytes per pixel, and writes ``gpu_check.json`` and ``gpu_check.md`` (each written whole) into
``--out`` (default: results/gpu_check_<time>/).  A few minutes on a recent GPU.

Without CUDA it says so, then runs the same code on the CPU at a tiny size (the dry run: the script checks itself,
nothing is measured), writes and reads back its report, and exits 0.  ``--dry_run`` forces that on a GPU machine.
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile
import time

import torch

from sclle_basicsr.benchmarks.gpu_check import markdown, run_gpu_check
from sclle_basicsr.utils.assets import REPO_ROOT
from sclle_basicsr.utils.atomic_files import write_atomic


def write_report(report, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    write_atomic(osp.join(out_dir, 'gpu_check.json'), json.dumps(report, indent=1))
    write_atomic(osp.join(out_dir, 'gpu_check.md'), markdown(report))
    with open(osp.join(out_dir, 'gpu_check.json')) as f:  # read back: what was written is the report
        if json.load(f) != json.loads(json.dumps(report)):
            raise RuntimeError(f'{out_dir}/gpu_check.json does not read back as the report')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=None, help='report folder (default: results/gpu_check_<time>; a dry run '
                                                'without --out writes into a temporary folder it removes)')
    p.add_argument('--dry_run', action='store_true', help='check the script on the CPU at a tiny size')
    p.add_argument('--model_path', default=None, help='DCE-Net weights for inference (default: the released '
                                                      'SCL-LLE weights of the shared assets, else random)')
    args = p.parse_args(argv)
    dry_run = args.dry_run or not torch.cuda.is_available()
    if not torch.cuda.is_available():
        print(f'gpu-check: no CUDA device here (torch {torch.__version__}, built for CUDA {torch.version.cuda}): '
              'nothing to measure. Dry run of the script on the CPU instead.', flush=True)
    device = torch.device('cpu' if dry_run else 'cuda')
    report = run_gpu_check(device, dry_run, log=lambda line: print(line, flush=True), model_path=args.model_path)
    if dry_run and args.out is None:
        with tempfile.TemporaryDirectory() as folder:
            write_report(report, folder)
    else:
        out = args.out or osp.join(REPO_ROOT, 'results', f'gpu_check_{time.strftime("%Y%m%d_%H%M%S")}')
        write_report(report, out)
        print(f'gpu-check: report written to {out}/gpu_check.json and gpu_check.md')
    print()
    print(markdown(report))
    if dry_run:
        print('gpu-check: dry run ' + ('passed: the script works; run it on a CUDA machine for the figures'
                                       if report['ok'] else 'FAILED (see above)'))
    return 0 if report['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
