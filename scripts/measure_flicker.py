"""Flicker of enhanced videos against their inputs, with and without ``--temporal_smoothing``: pans across BDD100K
night frames (the shared assets) and across a synthetic still, under steady exposure, exposure steps and a lamp
flicker.  Prints a Markdown table (docs/video.md holds the one measured for the README); see
:mod:`sclle_basicsr.enhance.flicker` for the figures.

    python scripts/measure_flicker.py --model_path ../shared/assets/weights/sclle_official.pth
"""
import argparse
import json
import os.path as osp
import sys
import tempfile

import numpy as np

from sclle_basicsr.enhance.flicker import markdown_table, measure
from sclle_basicsr.enhance.video_samples import synthetic_still
from sclle_basicsr.utils.assets import asset_path
from sclle_basicsr.utils.image_files import list_images


def bdd_stills(count, size):
    """``count`` BDD night frames evenly spread over the sorted folder (RGB uint8), scaled to 1.25 times the clip
    ``size`` so that the panning window sees most of each scene; [] when the folder is absent."""
    from PIL import Image
    folder = asset_path('lowlight_unlabelled', 'BDD_night')
    paths = list_images(folder) if osp.isdir(folder) else []
    picks = paths[::max(len(paths) // count, 1)][:count]
    scaled = (size[0] * 5 // 4, size[1] * 5 // 4)
    return [np.asarray(Image.open(p).convert('RGB').resize(scaled, Image.BICUBIC)) for p in picks]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model_path', default=asset_path('weights', 'sclle_official.pth'))
    p.add_argument('--stills', type=int, default=4, help='BDD night frames panned across')
    p.add_argument('--frames', type=int, default=24, help='frames per clip')
    p.add_argument('--size', default='640x360', help='clip frame size WxH')
    p.add_argument('--alphas', type=float, nargs='+', default=[0.0, 0.5, 0.8])
    p.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    p.add_argument('--json', default=None, help='also write the rows to this JSON file')
    args = p.parse_args(argv)
    import torch

    from sclle_basicsr.inference import Enhancer
    torch.set_num_threads(args.threads)
    width, height = (int(v) for v in args.size.split('x'))
    if not osp.isfile(args.model_path):
        sys.exit(f'error: --model_path {args.model_path} not found')
    enhancer = Enhancer(args.model_path, device='cpu')
    groups = {'BDD night pan': bdd_stills(args.stills, (width, height)),
              'synthetic pan': [synthetic_still(width * 5 // 4, height * 5 // 4)]}
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for group, stills in groups.items():
            if not stills:
                print(f'{group}: skipped (no BDD frames under {asset_path("lowlight_unlabelled", "BDD_night")})',
                      file=sys.stderr)
                continue
            rows = measure(enhancer, stills, workdir, args.alphas, args.frames, (width, height))
            results[group] = rows
            print(f'\n{group}: {len(stills)} still(s), {args.frames} frames of {width}x{height} each, '
                  f'{osp.basename(args.model_path)}, torch threads {args.threads}\n')
            print(markdown_table(rows))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == '__main__':
    sys.exit(main())
