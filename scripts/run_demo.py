"""The embedded demo: build a small dataset from images inside installed packages, train SCL-LLE through
``sclle_basicsr/train.py`` for a few minutes on CPU, then draw a before/after contact sheet and the loss curves.

    make demo            (or: python scripts/run_demo.py [--total_iter N])

Everything is written under ``demo_data/`` (inputs) and ``experiments/SCLLLE_demo/`` (BasicSR's run folder; an
earlier demo run is archived by BasicSR, never overwritten).
"""
import argparse
import glob
import os
import os.path as osp
import re
import subprocess
import sys

import cv2
import numpy as np

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
sys.path.insert(0, REPO_ROOT)
from sclle_basicsr.assets import asset_path  # noqa: E402
from sclle_basicsr.contact_sheet import labelled_row, stack_rows  # noqa: E402

OPTIONS = 'options/train/train_SCLLLE_demo.yml'
RUN_NAME = 'SCLLLE_demo'
PHOTOS = ('astronaut.png', 'chelsea.png', 'coffee.png', 'rocket.jpg', 'motorcycle_left.png', 'ihc.png', 'retina.jpg')
NUM_CLASSES = 19


def sample_photos(max_side=256):
    """scikit-image's bundled colour photographs (files inside its wheel: nothing is downloaded), RGB uint8."""
    import importlib.util
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


def write_rgb(path, rgb):
    cv2.imwrite(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def build_demo_data(root, seed=0, num_scenes=16):
    rng = np.random.default_rng(seed)
    photos = sample_photos()
    folders = {k: osp.join(root, k) for k in ('scenes', 'labels', 'positive', 'under', 'over', 'val')}
    for folder in folders.values():
        os.makedirs(folder, exist_ok=True)
    for i in range(num_scenes):
        image, label = labelled_scene(photos, rng)
        write_rgb(osp.join(folders['scenes'], f'scene{i:02d}.png'), image)
        cv2.imwrite(osp.join(folders['labels'], f'scene{i:02d}.png'), label)
    names = [osp.splitext(n)[0] for n in PHOTOS]
    for name, photo in zip(names, photos):
        x = photo.astype(np.float32) / 255
        write_rgb(osp.join(folders['positive'], f'{name}.png'), photo)
        write_rgb(osp.join(folders['under'], f'{name}.png'), (0.35 * x**2.5 * 255).astype(np.uint8))
        write_rgb(osp.join(folders['over'], f'{name}.png'), (np.clip(x * 2.2 + 0.1, 0, 1) * 255).astype(np.uint8))
    for name, photo in list(zip(names, photos))[:3]:  # darkened photographs to watch during training
        dark = 0.6 * (photo.astype(np.float32) / 255)**2.8
        write_rgb(osp.join(folders['val'], f'{name}.png'), (dark * 255).astype(np.uint8))
    print(f'Demo data in {root}: {num_scenes} labelled scenes, {len(photos)} positives and 2x{len(photos)} '
          'negatives, 3 validation images (from scikit-image sample photographs)')


def train(total_iter):
    command = [sys.executable, 'sclle_basicsr/train.py', '-opt', OPTIONS]
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
    subprocess.run(command + ['--force_yml'] + force, cwd=REPO_ROOT, check=True)


def parse_losses(log_text):
    """{loss name: [(iteration, value), ...]} from BasicSR's training log lines."""
    curves = {}
    for line in log_text.splitlines():
        it = re.search(r'iter:\s*([\d,]+)', line)
        if not it:
            continue
        for key, value in re.findall(r'\b(l_\w+): ([-+0-9.e]+)', line):
            curves.setdefault(key, []).append((int(it.group(1).replace(',', '')), float(value)))
    return curves


def plot_losses(curves, path, smooth=0):
    """One panel per loss; with ``smooth`` > 1 also a running mean over that many logged points (noisy runs)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 2.8), squeeze=False)
    for ax, (key, points) in zip(axes[0], sorted(curves.items())):
        its, values = zip(*points)
        ax.plot(its, values, marker='.', alpha=0.4 if smooth > 1 else 1.0)
        if smooth > 1 and len(values) >= smooth:
            mean = np.convolve(values, np.ones(smooth) / smooth, mode='valid')
            ax.plot(its[smooth - 1:], mean, color='black', label=f'mean of {smooth}')
            ax.legend(fontsize=7)
        ax.set_title(key)
        ax.set_xlabel('iteration')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def contact_sheet(val_dir, vis_dir, path, height=200):
    """One row per validation image: input | enhanced at each validation, labelled."""
    rows = []
    for src in sorted(glob.glob(osp.join(val_dir, '*.png'))):
        name = osp.splitext(osp.basename(src))[0]
        results = sorted((int(re.search(r'_(\d+)\.png$', p).group(1)), p)
                         for p in glob.glob(osp.join(vis_dir, name, f'{name}_*.png')))
        tiles = [('input', cv2.imread(src))] + [(f'iter {it}', cv2.imread(p)) for it, p in results]
        rows.append(labelled_row(tiles, height))
    cv2.imwrite(path, stack_rows(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--total_iter', type=int, default=150)
    parser.add_argument('--data', default=osp.join(REPO_ROOT, 'demo_data'))
    args = parser.parse_args()
    if osp.abspath(args.data) != osp.join(REPO_ROOT, 'demo_data'):
        raise SystemExit('--data: the demo options read demo_data/ under the repository root')
    build_demo_data(args.data)
    train(args.total_iter)
    run_dir = osp.join(REPO_ROOT, 'experiments', RUN_NAME)
    log_text = ''.join(open(f).read() for f in sorted(glob.glob(osp.join(run_dir, 'train_*.log'))))
    plot_losses(parse_losses(log_text), osp.join(run_dir, 'loss_curves.png'))
    contact_sheet(osp.join(args.data, 'val'), osp.join(run_dir, 'visualization'),
                  osp.join(run_dir, 'contact_sheet.png'))
    niqe = re.findall(r'# niqe: ([0-9.]+)', log_text)
    print(f'\nDemo done. Validation NIQE (lower is better) per validation round: {", ".join(niqe)}')
    print(f'Enhanced images: {run_dir}/visualization/\nContact sheet:   {run_dir}/contact_sheet.png\n'
          f'Loss curves:     {run_dir}/loss_curves.png\nCheckpoints:     {run_dir}/models/')


if __name__ == '__main__':
    main()
