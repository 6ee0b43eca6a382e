r"""Table 2: PSNR / SSIM (RGB) / LPIPS on a paired set laid out as <dataroot>/low and <dataroot>/gt (same stems).

    python scripts/eval_table2_paired.py --dataroot /data/SICE_Part2 \
        --checkpoints identity sclle=../shared/assets/weights/sclle_official.pth \
        [--configs mine=my_net.yml] \
        --lpips_backbone /weights/alexnet-owt-7be5be79.pth [--no_lpips] [--max_images N] [--out DIR]

LPIPS downloads nothing: --lpips_backbone is a torchvision alexnet (or --lpips_net vgg: vgg16) state dict; the
LPIPS linear layers are the v0.1 ones shipped in the lpips package.

--configs NAME=OPTIONS.yml benchmarks any BasicSR network: of the test option file only network_g (any registered
arch) and path (pretrain_network_g, param_key_g, strict_load_g) are used, the rest is ignored; a relative
pretrain_network_g is relative to the repository root. The network runs on whole images and must return an image of
the input's size. Archs of your own: --imports the module registering them (importable: on PYTHONPATH).
"""
import argparse
import os.path as osp
import sys

import sclle_basicsr  # noqa: F401  (registers the archs, datasets, losses and models)
from sclle_basicsr import evaluation as ev


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoints', nargs='+', default=[], help='DCE-Net name=path entries and/or "identity"')
    p.add_argument('--configs', nargs='+', default=[], metavar='NAME=OPTIONS.yml',
                   help='BasicSR test option files: only network_g and path are used, the rest is ignored')
    p.add_argument('--imports', nargs='+', default=[], metavar='MODULE',
                   help='Python modules imported first: they register archs of your own')
    p.add_argument('--dataroot', required=True, help='folder with low/ and gt/')
    p.add_argument('--lpips_backbone', default=None, help='torchvision alexnet/vgg16 state dict (local path)')
    p.add_argument('--lpips_net', default='alex', choices=['alex', 'vgg'])
    p.add_argument('--no_lpips', action='store_true', help='skip LPIPS')
    p.add_argument('--max_images', type=int, default=None)
    p.add_argument('--device', default='cpu')
    p.add_argument('--tile', type=int, default=0, help='DCE-Net tile size (0: whole image; --configs: whole)')
    p.add_argument('--out', default=None, help='output folder (default results/table2_<timestamp>)')
    p.add_argument('--overwrite', action='store_true')
    args = p.parse_args(argv)
    try:
        methods = ev.parse_methods(args.checkpoints, args.configs, args.imports)
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
