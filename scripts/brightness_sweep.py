"""Each loss term against the output's brightness, on the study's data (see sclle_basicsr/study/brightness_sweep.py).

    python scripts/brightness_sweep.py --weights released=../shared/assets/weights/sclle_official.pth \
        wo_over_neg=model_zoo/sclle_ablation_wo_over_neg_1k.pth [--count 8 --size 192 --out experiments/sweep]
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np

from sclle_basicsr.study import brightness_sweep as bs
from sclle_basicsr.study.ablation_study import VGG_WEIGHTS, StudyError, prepare_data
from sclle_basicsr.utils.assets import ENV_VAR, REPO_ROOT, asset_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default=osp.join(REPO_ROOT, 'experiments', 'brightness_sweep'), help='output folder')
    parser.add_argument('--weights', nargs='*', default=[], metavar='NAME=CHECKPOINT',
                        help='DCE-Net checkpoints whose mean output brightness is marked on the plot')
    parser.add_argument('--count', type=int, default=8, help='inputs, positives and negatives of each kind')
    parser.add_argument('--size', type=int, default=192, help='crop size (the study\'s)')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from sclle_basicsr.archs.vgg_arch import FrozenVGG16Features
    from sclle_basicsr.inference.checkpoints import read_dcenet_state_dict
    vgg_path = asset_path(*VGG_WEIGHTS)
    if not osp.isfile(vgg_path):
        sys.exit(f'error: VGG-16 weights {vgg_path} not found (set {ENV_VAR} to the shared assets folder)')
    enhancers = []
    for entry in args.weights:
        name, sep, path = entry.partition('=')
        if not sep or not osp.isfile(path):
            sys.exit(f'error: --weights {entry!r}: expected NAME=CHECKPOINT with an existing file')
        from sclle_basicsr.archs.dcenet_arch import DCENet
        state, _, num_iterations, num_features = read_dcenet_state_dict(path)
        net = DCENet(num_iterations=num_iterations, num_features=num_features)
        net.load_state_dict(state)
        enhancers.append((name, net.eval()))
    try:
        folders = prepare_data(osp.join(args.out, 'data'))
    except StudyError as err:
        sys.exit(f'error: {err}')
    rng = np.random.default_rng(args.seed)
    lq, pos, under, over = (bs.random_crops(folders[k], args.count, args.size, rng)
                            for k in ('lq', 'positive', 'under', 'over'))
    vgg = FrozenVGG16Features(layers=('relu1_2', 'relu2_2', 'relu4_3'), weights_path=vgg_path)
    with torch.inference_mode(False):
        result = bs.sweep(vgg, lq, pos, under, over, enhancers=enhancers)
    os.makedirs(args.out, exist_ok=True)
    bs.write_sweep(result, osp.join(args.out, 'sweep.json'))
    bs.plot_sweep(result, osp.join(args.out, 'sweep.png'))
    names = [k for k in result if k not in ('gain', 'brightness', 'enhancers')]
    print('brightness ' + ' '.join(f'{b:7.3f}' for b in result['brightness']))
    for name in names:
        print(f'{name:18s} ' + ' '.join(f'{v:7.3f}' for v in result[name]))
    for name, value in result['enhancers'].items():
        print(f'{name}: mean output brightness {value:.3f}')
    print(f'-> {osp.join(args.out, "sweep.png")}, sweep.json')


if __name__ == '__main__':
    main()
