r"""How bright enhancers leave the five unpaired sets (and the input, `identity`): per set, the mean grey level of the
outputs, its 95th percentile and the share of pixels above 0.9. Writes <out>/output_brightness.md and .csv.

    python scripts/eval_output_brightness.py --checkpoints identity sclle=../shared/assets/weights/sclle_official.pth \
        mine=model_zoo/sclle_long_run_cosine8k.pth [--configs other=my_net.yml] [--sets DICM LIME] [--out DIR]
"""
import argparse
import os.path as osp
import sys

import sclle_basicsr  # noqa: F401  (registers the archs)
from sclle_basicsr import evaluation as ev
from sclle_basicsr.utils.assets import asset_path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoints', nargs='+', default=[], help='DCE-Net name=path entries and/or "identity"')
    p.add_argument('--configs', nargs='+', default=[], metavar='NAME=OPTIONS.yml',
                   help='BasicSR test option files: only network_g and path are used')
    p.add_argument('--imports', nargs='+', default=[], metavar='MODULE', help='modules registering archs of your own')
    p.add_argument('--sets', nargs='+', default=list(ev.LLE_SETS), help='set folders under --dataroot')
    p.add_argument('--dataroot', default=asset_path('lle_testsets'), help='folder holding the set folders')
    p.add_argument('--out', default=None, help='output folder (default results/brightness_<timestamp>)')
    p.add_argument('--overwrite', action='store_true', help='allow a non-empty existing --out')
    args = p.parse_args(argv)
    try:
        methods = ev.parse_methods(args.checkpoints, args.configs, args.imports)
        out = ev.make_output_dir(args.out or ev.default_out('brightness'), args.overwrite)
        _, md = ev.run_output_brightness(methods, out, args.sets, args.dataroot)
    except (ev.EvaluationError, OSError) as err:
        sys.exit(f'error: {err}')
    print(md)
    print(f'\nwritten: {osp.join(out, "output_brightness.md")} and .csv')


if __name__ == '__main__':
    main()
