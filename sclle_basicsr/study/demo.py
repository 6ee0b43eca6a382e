"""The embedded demo: a small labelled dataset built from photographs inside installed packages, a few minutes of
SCL-LLE training on CPU through BasicSR's runner (``python -m sclle_basicsr.train``), then a contact sheet and the
loss curves.

    python -m sclle_basicsr.study.demo [--total_iter N]      (in a checkout: make demo, or python scripts/run_demo.py)

Nothing is downloaded, so the demo runs on a machine without network or the shared assets, from a checkout or an
installed package: it writes ``demo_data/`` (inputs) and ``experiments/SCLLLE_demo/`` (BasicSR's run folder; the
folder of a previous run is archived by BasicSR, never overwritten) under the working directory.  Then
``python -m sclle_basicsr.test -opt <options>/test/test_SCLLLE_demo.yml`` tests the trained network there.
"""
import argparse
import importlib.util
import os
import os.path as osp
import re
import subprocess
import sys

import cv2
import numpy as np
import yaml

from sclle_basicsr.runner.training_log import plot_losses, read_run_losses
from sclle_basicsr.study.contact_sheet import validation_sheet, write_sheet
from sclle_basicsr.utils.assets import asset_path
from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.package_files import option_file

OPTIONS = option_file('train/train_SCLLLE_demo.yml')
RUN_NAME = 'SCLLLE_demo'
DEMO_DATA = 'demo_data'  # what the options file reads, relative to the working directory
PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png', 'ihc.png', 'retina.jpg')
NUM_CLASSES = 19


def sample_photos(max_side=256):
    """scikit-image's bundled colour photographs (files inside its wheel: nothing is downloaded), RGB uint8."""
    spec = importlib.util.find_spec('skimage')
    if spec is None:
        raise SystemExit('The demo reads the sample photographs of scikit-image (a BasicSR dependency): not installed')
    data_dir = osp.join(spec.submodule_search_locations[0], 'data')
    photos = []
    for name in PHOTOS:
        img = cv2.imread(osp.join(data_dir, name), cv2.IMREAD_COLOR)
        if img is None:
            raise SystemExit(f'Cannot read {osp.join(data_dir, name)} (scikit-image sample photograph)')
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        scale = max_side / max(img.shape[:2])
        if scale < 1:
            img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        photos.append(img)
    return photos


def labelled_scene(photos, rng, size=160):
    """A scene of random rectangles, each a Cityscapes-like class filled with a texture from one photograph.

    Regions of one class share a texture source, so the semantic brightness loss has consistent classes to act on.
    """
    image = np.zeros((size, size, 3), np.uint8)
    label = np.full((size, size), 255, np.uint8)
    for _ in range(rng.integers(5, 9)):
        cls = int(rng.integers(0, NUM_CLASSES))
        photo = photos[cls % len(photos)]
        h, w = (int(v) for v in rng.integers(size // 4, size // 2 + 1, 2))
        y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
        py, px = int(rng.integers(0, photo.shape[0] - h + 1)), int(rng.integers(0, photo.shape[1] - w + 1))
        image[y:y + h, x:x + w] = photo[py:py + h, px:px + w]
        label[y:y + h, x:x + w] = cls
    return image, label


def _write_png(path, pixels, rgb=True):
    ok, encoded = cv2.imencode('.png', cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR) if rgb else pixels)
    if not ok:
        raise OSError(f'cannot encode {path}')
    write_atomic(path, encoded.tobytes())


def build_demo_data(root, seed=0, num_scenes=16):
    """Labelled scenes, positives, under- and over-exposed negatives and validation images under ``root``."""
    rng = np.random.default_rng(seed)
    photos = sample_photos()
    folders = {k: osp.join(root, k) for k in ('scenes', 'labels', 'positive', 'under', 'over', 'val')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    for i in range(num_scenes):
        image, label = labelled_scene(photos, rng)
        _write_png(osp.join(folders['scenes'], f'scene{i:02d}.png'), image)
        _write_png(osp.join(folders['labels'], f'scene{i:02d}.png'), label, rgb=False)
    names = [osp.splitext(n)[0] for n in PHOTOS]
    for name, photo in zip(names, photos):
        x = photo.astype(np.float32) / 255
        _write_png(osp.join(folders['positive'], f'{name}.png'), photo)
        _write_png(osp.join(folders['under'], f'{name}.png'), (0.35 * x**2.5 * 255).astype(np.uint8))
        _write_png(osp.join(folders['over'], f'{name}.png'), (np.clip(x * 2.2 + 0.1, 0, 1) * 255).astype(np.uint8))
    for name, photo in list(zip(names, photos))[:3]:  # darkened photographs to watch during training
        dark = 0.6 * (photo.astype(np.float32) / 255)**2.8
        _write_png(osp.join(folders['val'], f'{name}.png'), (dark * 255).astype(np.uint8))
    print(f'Demo data in {root}: {num_scenes} labelled scenes, {len(photos)} positives and 2x{len(photos)} '
          'negatives, 3 validation images (from scikit-image sample photographs)')


def train(total_iter):
    """Train the demo run in a fresh process (BasicSR's runner), with the VGG-16 weights when the assets have them."""
    command = [sys.executable, '-m', 'sclle_basicsr.train', '-opt', OPTIONS]
    force = [f'train:total_iter={total_iter}']
    vgg = asset_path('weights', 'vgg16_imagenet_caffe_bgr_features.pth')
    if osp.isfile(vgg):
        print(f'VGG-16: ImageNet Caffe weights from {vgg}')
        force.append(f'train:vgg_opt:weights_path={vgg}')
    else:
        print(f'VGG-16: no weights at {vgg} (set SCLLE_ASSETS): the DEMO ONLY uses a RANDOMLY INITIALISED VGG-16, '
              'so L_c and L_fr compare random features.')
        force += ['train:vgg_opt:weights_format=random', 'train:vgg_opt:weights_path=~']
    print('DeepLabv3+: a tiny RANDOMLY INITIALISED segmentor (no Cityscapes checkpoint is available offline).')
    print('Running:', ' '.join(command + ['--force_yml'] + force), flush=True)
    subprocess.run(command + ['--force_yml'] + force, check=True)


def check_data_root(data_root):
    """Refuse a data folder other than the one the demo's options file reads (``ValueError``)."""
    if osp.abspath(data_root) != osp.abspath(DEMO_DATA):
        raise ValueError(f'{data_root}: the demo options read demo_data/ under the working directory')


def run_demo(total_iter, data_root=DEMO_DATA):
    """Build the data, train, draw the sheet and the curves; returns ``(run folder, validation NIQE per round)``."""
    check_data_root(data_root)
    build_demo_data(data_root)
    train(total_iter)
    run_dir = osp.abspath(osp.join('experiments', RUN_NAME))
    curves, logs = read_run_losses(run_dir)
    plot_losses(curves, osp.join(run_dir, 'loss_curves.png'))
    write_sheet(osp.join(run_dir, 'contact_sheet.png'),
                validation_sheet(osp.join(data_root, 'val'), osp.join(run_dir, 'visualization')))
    niqe = []
    for log in logs:
        with open(log) as f:
            niqe += re.findall(r'# niqe: ([0-9.]+)', f.read())
    return run_dir, niqe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--total_iter', type=int, default=150)
    parser.add_argument('--data', default=DEMO_DATA)
    args = parser.parse_args(argv)
    with open(OPTIONS) as f:
        print_freq = yaml.safe_load(f)['logger']['print_freq']
    if args.total_iter < print_freq:
        raise SystemExit(f'--total_iter {args.total_iter}: at least {print_freq}, the interval at which {OPTIONS} '
                         'logs the losses the demo plots')
    try:
        check_data_root(args.data)
    except ValueError as err:
        raise SystemExit(f'--data {err}') from None
    run_dir, niqe = run_demo(args.total_iter, args.data)
    print(f'\nDemo done. Validation NIQE (lower is better) per validation round: {", ".join(niqe)}')
    print(f'Enhanced images: {run_dir}/visualization/\nContact sheet:   {run_dir}/contact_sheet.png\n'
          f'Loss curves:     {run_dir}/loss_curves.png\nCheckpoints:     {run_dir}/models/')


if __name__ == '__main__':
    main()
