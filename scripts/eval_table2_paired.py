"""Table 2: PSNR / SSIM (RGB) / LPIPS on a paired set laid out as <dataroot>/low and <dataroot>/gt (same stems).

    python scripts/eval_table2_paired.py --dataroot /data/SICE_Part2 \
        --checkpoints identity sclle=../shared/assets/weights/sclle_official.pth \
        --lpips_backbone /weights/alexnet-owt-7be5be79.pth [--no_lpips] [--max_images N] [--out DIR]

LPIPS downloads nothing: --lpips_backbone is a torchvision alexnet (or --lpips_net vgg: vgg16) state dict; the
LPIPS linear layers are the v0.1 ones shipped in the lpips package.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import sclle_basicsr  # noqa: E402,F401  (compat fixes, registration)
from sclle_basicsr import evaluation as ev  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoints', nargs='+', required=True, help='name=path entries and/or "identity"')
    p.add_argument('--dataroot', required=True, help='folder with low/ and gt/')
    p.add_argument('--lpips_backbone', default=None, help='torchvision alexnet/vgg16 state dict (local path)')
    p.add_argument('--lpips_net', default='alex', choices=['alex', 'vgg'])
    p.add_argument('--no_lpips', action='store_true', help='skip LPIPS')
    p.add_argument('--max_images', type=int, default=None)
    p.add_argument('--device', default='cpu')
    p.add_argument('--tile', type=int, default=0)
    p.add_argument('--out', default=None, help='output folder (default results/table2_<timestamp>)')
    p.add_argument('--overwrite', action='store_true')
    args = p.parse_args(argv)
    try:
        methods = ev.parse_methods(args.checkpoints)
        if not args.no_lpips and not args.lpips_backbone:
            raise ev.EvaluationError('LPIPS needs the backbone weights: pass --lpips_backbone PATH or --no_lpips')
        out = ev.make_output_dir(args.out or ev.default_out('table2'), args.overwrite)
        _, md = ev.run_table2(methods, args.dataroot, out, args.lpips_backbone, args.lpips_net, args.no_lpips,
                              args.max_images, args.device, args.tile)
    except (ev.EvaluationError, OSError) as err:
        sys.exit(f'error: {err}')
    print(md)
    print(f'\nwritten: {osp.join(out, "table2_paired.md")} and .csv')


if __name__ == '__main__':
    main()
