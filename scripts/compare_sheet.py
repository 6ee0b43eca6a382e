"""Side-by-side picture of networks on a few images: one row per image, input | each network, captioned.

    python scripts/compare_sheet.py --images ../shared/assets/lle_testsets/LIME/*.bmp \\
        --checkpoints ours=experiments/SCLLLE_assets_cpu/models/net_g_2500.pth \\
        sclle=../shared/assets/weights/sclle_official.pth [--configs esr=my_net.yml] --out compare.png [--height 240]

Checkpoints: DCE-Net as BasicSR files (params_ema, else params) or bare state_dicts such as the released weights.
--configs NAME=OPTIONS.yml draws any BasicSR network: of the test option file only network_g (any registered arch)
and path (pretrain_network_g, param_key_g, strict_load_g) are used; archs of your own: --imports the module that
registers them. The first column is the input, so identity (the input as a method in the evaluation scripts) is
refused.
"""
import argparse
import os.path as osp
import sys

from sclle_basicsr import evaluation as ev
from sclle_basicsr.study.contact_sheet import enhancer_sheet, write_sheet


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', nargs='+', required=True)
    parser.add_argument('--checkpoints', nargs='+', default=[],
                        help='DCE-Net name=path entries (not identity: the input is the first column)')
    parser.add_argument('--configs', nargs='+', default=[], metavar='NAME=OPTIONS.yml',
                        help='BasicSR test option files: only network_g and path are used, the rest is ignored')
    parser.add_argument('--imports', nargs='+', default=[], metavar='MODULE',
                        help='Python modules imported first: they register archs of your own')
    parser.add_argument('--out', required=True, help='PNG to write (an existing file is an error)')
    parser.add_argument('--height', type=int, default=240, help='row height in pixels')
    args = parser.parse_args(argv)
    if osp.exists(args.out):
        sys.exit(f'error: {args.out} exists; choose another --out')
    if ev.IDENTITY in args.checkpoints:
        sys.exit(f'error: --checkpoints {ev.IDENTITY}: the first column of the sheet is the input already; '
                 'give name=path entries only')
    try:
        methods = ev.parse_methods(args.checkpoints, args.configs, args.imports)
    except ev.EvaluationError as err:
        sys.exit(f'error: {err}')
    try:
        sheet = enhancer_sheet(args.images, methods, args.height)
    except ev.EvaluationError as err:  # weights or outputs with NaN or Inf
        sys.exit(f'error: {err}')
    except ValueError as err:
        sys.exit(f'error: {err} (option --images)')
    try:
        write_sheet(args.out, sheet)
    except ValueError as err:
        sys.exit(f'error: {err} (option --out)')
    print(f'{len(args.images)} image(s) x {len(methods)} network(s) -> {args.out}')


if __name__ == '__main__':
    main()
