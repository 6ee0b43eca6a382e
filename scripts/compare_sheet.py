"""Side-by-side picture of checkpoints on a few images: one row per image, input | each checkpoint, captioned.

    python scripts/compare_sheet.py --images ../shared/assets/lle_testsets/LIME/*.bmp \\
        --checkpoints ours=experiments/SCLLLE_assets_cpu/models/net_g_2500.pth \\
        sclle=../shared/assets/weights/sclle_official.pth --out compare.png [--height 240]

Checkpoints: BasicSR files (params_ema, else params) or bare state_dicts such as the released weights.  The first
column is the input, so identity (the input as a method in the evaluation scripts) is refused.
"""
import argparse
import os.path as osp
import sys

from sclle_basicsr import evaluation as ev
from sclle_basicsr.contact_sheet import enhancer_sheet, write_sheet


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--images', nargs='+', required=True)
    parser.add_argument('--checkpoints', nargs='+', required=True,
                        help='name=path entries (not identity: the input is the first column)')
    parser.add_argument('--out', required=True, help='PNG to write (an existing file is an error)')
    parser.add_argument('--height', type=int, default=240, help='row height in pixels')
    args = parser.parse_args(argv)
    if osp.exists(args.out):
        sys.exit(f'error: {args.out} exists; choose another --out')
    if ev.IDENTITY in args.checkpoints:
        sys.exit(f'error: --checkpoints {ev.IDENTITY}: the first column of the sheet is the input already; '
                 'give name=path entries only')
    try:
        methods = ev.parse_methods(args.checkpoints)
    except ev.EvaluationError as err:
        sys.exit(f'error: {err}')
    try:
        sheet = enhancer_sheet(args.images, methods, args.height)
    except ValueError as err:
        sys.exit(f'error: {err} (option --images)')
    try:
        write_sheet(args.out, sheet)
    except ValueError as err:
        sys.exit(f'error: {err} (option --out)')
    print(f'{len(args.images)} image(s) x {len(methods)} checkpoint(s) -> {args.out}')


if __name__ == '__main__':
    main()
