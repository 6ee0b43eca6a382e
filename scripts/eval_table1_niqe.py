r"""Table 1: NIQE, UNIQUE and LOE of enhancers (and the input, `identity`) on DICM/LIME/MEF/NPE/VV through BasicSR's
test runner.

One BasicSR test option file per network is generated under <out>/options/, the runner is run with <out> as root
(results and logs under <out>/results/<name>/), each metric per set is parsed from the log; writes
<out>/table1_niqe.md and .csv (per set and averaged: NIQE, UNIQUE, LOE; seconds per set).

    python scripts/eval_table1_niqe.py --checkpoints identity sclle=../shared/assets/weights/sclle_official.pth \
        zerodce=../shared/assets/weights/zerodce_official.pth [--configs mine=my_net.yml] \
        [--unique_weights UNIQUE.pt] [--metrics niqe loe] [--sets DICM LIME] [--max_images 3] [--out DIR]

UNIQUE needs its weights, which are never downloaded: --unique_weights, else $SCLLE_UNIQUE_WEIGHTS, else pyiqa's
cache (<torch hub dir>/pyiqa/UNIQUE.pt). When none are found its columns are marked unavailable, with where to get
the file, and NIQE and LOE are still computed.

--configs NAME=OPTIONS.yml benchmarks any BasicSR network: of the test option file only network_g (any registered
arch) and path (pretrain_network_g, param_key_g, strict_load_g) are used, the rest is ignored; a relative
pretrain_network_g is relative to the repository root. Archs of your own: --imports the module registering them
(importable: on PYTHONPATH).
"""
import argparse
import os.path as osp
import sys

import sclle_basicsr  # noqa: F401  (registers the archs, datasets, losses, metrics and models)
from sclle_basicsr import evaluation as ev
from sclle_basicsr.utils.assets import asset_path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoints', nargs='+', default=[], help='DCE-Net name=path entries and/or "identity"')
    p.add_argument('--configs', nargs='+', default=[], metavar='NAME=OPTIONS.yml',
                   help='BasicSR test option files: only network_g and path are used, the rest is ignored')
    p.add_argument('--imports', nargs='+', default=[], metavar='MODULE',
                   help='Python modules imported first (here and in the runner): they register archs of your own')
    p.add_argument('--sets', nargs='+', default=list(ev.LLE_SETS), help='set folders under --dataroot')
    p.add_argument('--dataroot', default=asset_path('lle_testsets'), help='folder holding the set folders')
    p.add_argument('--out', default=None, help='output folder (default results/table1_<timestamp>)')
    p.add_argument('--overwrite', action='store_true', help='allow a non-empty existing --out')
    p.add_argument('--max_images', type=int, default=None, help='first N images (sorted) per set (quick runs)')
    p.add_argument('--save_img', action='store_true', help='let the runner save the enhanced images')
    p.add_argument('--metrics', nargs='+', default=list(ev.TABLE1_METRICS), choices=ev.TABLE1_METRICS,
                   help='metrics to compute (niqe always)')
    p.add_argument('--unique_weights', default=None, metavar='UNIQUE.pt',
                   help="UNIQUE weights (default: $SCLLE_UNIQUE_WEIGHTS, else pyiqa's cache; none: UNIQUE unavailable)")
    args = p.parse_args(argv)
    try:
        methods = ev.parse_methods(args.checkpoints, args.configs, args.imports)
        metrics = [m for m in ev.TABLE1_METRICS if m == 'niqe' or m in args.metrics]
        if 'unique' in metrics:
            ev.unique_availability(args.unique_weights)  # a given file that is unusable: an error before any output
        out = ev.make_output_dir(args.out or ev.default_out('table1'), args.overwrite)
        _, md = ev.run_table1(methods, out, args.sets, args.dataroot, args.max_images, args.save_img,
                              imports=args.imports, metrics=metrics, unique_weights=args.unique_weights)
    except (ev.EvaluationError, OSError) as err:
        sys.exit(f'error: {err}')
    print(md)
    print(f'\nwritten: {osp.join(out, "table1_niqe.md")} and .csv')


if __name__ == '__main__':
    main()
