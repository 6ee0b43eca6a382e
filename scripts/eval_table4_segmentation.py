r"""Table 4: mIoU of a frozen DeepLabv3+ on Cityscapes val images darkened as I**gamma, after enhancement.

    python scripts/eval_table4_segmentation.py --dataroot /data/cityscapes \
        --seg_checkpoint deeplabv3plus_r50-d8_512x1024_80k_cityscapes.pth \
        --checkpoints identity sclle=../shared/assets/weights/sclle_official.pth [--configs mine=my_net.yml] \
        [--gammas 1 2 6 10] [--max_side 1024] [--max_images N] [--out DIR]

Writes <out>/table4_segmentation.md and .csv (mIoU % per gamma) and table4_per_class_iou.csv.

--configs NAME=OPTIONS.yml benchmarks any BasicSR network: of the test option file only network_g (any registered
arch) and path (pretrain_network_g, param_key_g, strict_load_g) are used, the rest is ignored; a relative
pretrain_network_g is relative to the repository root. The network runs on whole images and must return an image of
the input's size. Archs of your own: --imports the module registering them (importable: on PYTHONPATH).
"""
import argparse
import json
import os.path as osp
import sys

import sclle_basicsr  # noqa: F401  (registers the archs, datasets, losses and models)
from sclle_basicsr import evaluation as ev
from sclle_basicsr.utils.assets import asset_path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--checkpoints', nargs='+', default=[], help='DCE-Net name=path entries and/or "identity"')
    p.add_argument('--configs', nargs='+', default=[], metavar='NAME=OPTIONS.yml',
                   help='BasicSR test option files: only network_g and path are used, the rest is ignored')
    p.add_argument('--imports', nargs='+', default=[], metavar='MODULE',
                   help='Python modules imported first: they register archs of your own')
    p.add_argument('--dataroot', default=asset_path('cityscapes_mini'),
                   help='Cityscapes root (leftImg8bit/val, gtFine/val)')
    p.add_argument('--gammas', nargs='+', type=float, default=list(ev.DEFAULT_GAMMAS))
    p.add_argument('--seg_config', default=None, help='mmseg config (default: DeepLabv3+ R50-D8 Cityscapes)')
    p.add_argument('--seg_checkpoint', default=None, help='mmseg checkpoint path or URL (required)')
    p.add_argument('--seg_cfg_options', default=None, help='JSON dict merged into the mmseg config')
    p.add_argument('--seg_random_init', action='store_true', help='random segmentor weights (tests only)')
    p.add_argument('--max_side', type=int, default=None, help='downscale so the longer side is at most this')
    p.add_argument('--max_images', type=int, default=None)
    p.add_argument('--device', default='cpu')
    p.add_argument('--tile', type=int, default=0, help='DCE-Net tile size (0: whole image; --configs: whole)')
    p.add_argument('--out', default=None, help='output folder (default results/table4_<timestamp>)')
    p.add_argument('--overwrite', action='store_true')
    args = p.parse_args(argv)
    try:
        if args.seg_checkpoint is None and not args.seg_random_init:
            raise ev.EvaluationError('--seg_checkpoint is required (an mmseg Cityscapes DeepLabv3+ checkpoint)')
        methods = ev.parse_methods(args.checkpoints, args.configs, args.imports)
        out = ev.make_output_dir(args.out or ev.default_out('table4'), args.overwrite)
        seg = ev.build_segmentor(args.seg_config, args.seg_checkpoint,
                                 json.loads(args.seg_cfg_options) if args.seg_cfg_options else None,
                                 args.seg_random_init, args.device)
        _, md = ev.run_table4(methods, args.dataroot, out, seg, args.gammas, args.max_side, args.max_images,
                              args.device, args.tile)
    except (ev.EvaluationError, OSError) as err:
        sys.exit(f'error: {err}')
    print(md)
    print(f'\nwritten: {osp.join(out, "table4_segmentation.md")} and .csv')


if __name__ == '__main__':
    main()
