"""BasicSR's test runner end to end: released weights, enhanced images saved, NIQE logged, bad files named."""
import glob
import logging
import os.path as osp
import re
import shutil
import subprocess
import sys
import uuid

import cv2
import numpy as np
import pytest
import torch
from basicsr.metrics import calculate_niqe
from conftest import require_asset
from test_dcenet_arch import reference_forward

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.utils.assets import REPO_ROOT

OPTIONS = """
name: {name}
model_type: SCLLLEModel
scale: 1
num_gpu: 0
manual_seed: 0
datasets:
  test_1:
    name: mini
    type: CheckedSingleImageDataset
    dataroot_lq: {folder}
    io_backend: {{type: disk}}
network_g: {{type: DCENet}}
path:
  pretrain_network_g: {weights}
  param_key_g: ~
val:
  save_img: true
  suffix: ~
  metrics:
    niqe: {{type: calculate_niqe, crop_border: 0}}
"""


def write_inputs(folder, count=3):
    """PNG copies of the first DICM images (full size: NIQE of downscaled copies says little)."""
    names = []
    for src in sorted(glob.glob(osp.join(require_asset('lle_testsets', 'DICM'), '*.jpg')))[:count]:
        img = cv2.imread(src)
        name = osp.splitext(osp.basename(src))[0]
        cv2.imwrite(osp.join(folder, f'{name}.png'), img)
        names.append(name)
    return names


def run_test_runner(tmp_path, folder, weights):
    name = f'pytest_{uuid.uuid4().hex[:8]}'
    opt_file = tmp_path / 'test.yml'
    opt_file.write_text(OPTIONS.format(name=name, folder=folder, weights=weights))
    results = osp.join(REPO_ROOT, 'results', name)
    try:
        proc = subprocess.run([sys.executable, 'sclle_basicsr/test.py', '-opt', str(opt_file)],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        log = ''.join(open(f).read() for f in glob.glob(osp.join(results, '*.log')))
        outputs = {osp.basename(p): cv2.imread(p, cv2.IMREAD_UNCHANGED)
                   for p in glob.glob(osp.join(results, 'visualization', 'mini', '*.png'))}
    finally:
        shutil.rmtree(results, ignore_errors=True)
    return proc, log, outputs, name


def logged_niqe(log):
    found = re.findall(r'# niqe: ([0-9.]+)', log)
    assert found, f'no NIQE in the log:\n{log[-2000:]}'
    return float(found[-1])


@pytest.fixture(scope='module')
def weights():
    return require_asset('weights', 'sclle_official.pth')


def test_released_weights_enhance_and_lower_niqe(tmp_path, weights):
    folder = tmp_path / 'lq'
    folder.mkdir()
    names = write_inputs(str(folder))
    proc, log, outputs, run = run_test_runner(tmp_path, str(folder), weights)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(weights, map_location='cpu')  # raw released weights, subnormals kept
    input_niqe = []
    for name in names:
        lq = cv2.imread(str(folder / f'{name}.png'))
        out = outputs[f'{name}_{run}.png']
        assert out.shape == lq.shape and out.dtype == np.uint8
        assert out.mean() > lq.mean() + 10  # brighter
        x = torch.from_numpy(lq[..., ::-1].astype(np.float32) / 255).permute(2, 0, 1)[None]
        with torch.no_grad():
            expected = reference_forward(state, x)[0].clamp(0, 1)[0].permute(1, 2, 0).numpy()[..., ::-1]
        assert np.abs(out.astype(int) - np.round(expected * 255).astype(int)).max() <= 1  # one grey level
        input_niqe.append(calculate_niqe(lq, crop_border=0))
    assert logged_niqe(log) < float(np.mean(input_niqe))


def test_bad_files_are_named_and_the_rest_processed(tmp_path, weights):
    folder = tmp_path / 'lq'
    folder.mkdir()
    (name, ) = write_inputs(str(folder), count=1)
    good = cv2.imread(str(folder / f'{name}.png'))
    (folder / 'notes.txt').write_text('not an image')
    cv2.imwrite(str(folder / 'gray.png'), cv2.cvtColor(good, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / 'rgba.png'), cv2.cvtColor(good, cv2.COLOR_BGR2BGRA))
    ok, jpeg = cv2.imencode('.jpg', good)
    (folder / 'truncated.jpg').write_bytes(jpeg.tobytes()[:len(jpeg) // 2])

    proc, log, outputs, run = run_test_runner(tmp_path, str(folder), weights)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r'Skipping .*notes\.txt: not an image file', log)
    assert re.search(r'Skipping cannot decode image .*truncated\.jpg', log)
    assert re.search(r'gray\.png is grayscale', log)
    assert re.search(r'rgba\.png has an alpha channel', log)
    assert sorted(outputs) == sorted(f'{n}_{run}.png' for n in (name, 'gray', 'rgba'))
    for key in ('gray', 'rgba'):
        assert outputs[f'{key}_{run}.png'].shape == good.shape  # three channels out
    logged_niqe(log)


def test_folder_without_images_is_a_clear_error(tmp_path, weights):
    folder = tmp_path / 'lq'
    folder.mkdir()
    (folder / 'readme.md').write_text('no images here')
    proc, log, _, _ = run_test_runner(tmp_path, str(folder), weights)
    assert proc.returncode != 0
    assert f'No readable image in {folder} (option dataroot_lq)' in proc.stderr


def test_images_niqe_cannot_score_are_named_and_left_out(tmp_path):
    """NIQE fails on images under 96x96 (a side of one pixel trips an assertion in BasicSR's NIQE) and on flat
    ones: each is still enhanced and saved, named with the reason, left out of the mean, and the run goes on."""
    torch.manual_seed(0)
    weights = tmp_path / 'random_dcenet.pth'
    torch.save(DCENet().state_dict(), weights)
    folder = tmp_path / 'lq'
    folder.mkdir()
    yy, xx = np.mgrid[0:160, 0:200]
    texture = (60 + 40 * np.sin(xx / 7.0) * np.cos(yy / 11.0))[..., None] + np.random.default_rng(0).normal(
        0, 8, (160, 200, 3))
    cv2.imwrite(str(folder / 'good.png'), np.clip(texture, 0, 255).astype(np.uint8))
    cv2.imwrite(str(folder / 'tiny.png'), np.full((40, 50, 3), 30, np.uint8))
    cv2.imwrite(str(folder / 'flat.png'), np.full((120, 120, 3), 30, np.uint8))
    for name, shape in (('one', (1, 1, 3)), ('line', (1, 300, 3)), ('column', (300, 1, 3))):
        cv2.imwrite(str(folder / f'{name}.png'), np.full(shape, 30, np.uint8))

    proc, log, outputs, run = run_test_runner(tmp_path, str(folder), str(weights))
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = ('column', 'flat', 'good', 'line', 'one', 'tiny')
    assert sorted(outputs) == sorted(f'{n}_{run}.png' for n in names)  # all still enhanced
    for name, size in (('tiny', '50x40'), ('one', '1x1'), ('line', '300x1'), ('column', '1x300')):
        assert f'niqe cannot score {folder / name}.png: the image is {size} pixels, under the 96x96 it needs; left ' \
            'out of the niqe mean' in log
    assert re.search(r'niqe cannot score \S*flat\.png: LinAlgError: SVD did not converge', log)
    assert ('niqe of mini: 5 of 6 image(s) left out (cannot be scored, named above): column.png, flat.png, line.png, '
            'one.png, tiny.png') in log
    expected = calculate_niqe(outputs[f'good_{run}.png'], crop_border=0)
    assert logged_niqe(log) == pytest.approx(float(expected), abs=1e-4)


def build_logging(build_dataset, options):
    """A CheckedSingleImageDataset built from ``options``, with the log records BasicSR's logger got meanwhile."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger('basicsr').addHandler(handler)
    try:
        dataset = build_dataset({'name': 'mini', 'type': 'CheckedSingleImageDataset', 'phase': 'test',
                                 'io_backend': {'type': 'disk'}, **options})
    finally:
        logging.getLogger('basicsr').removeHandler(handler)
    return dataset, records


def test_float_images_are_skipped_by_name(tmp_path):
    """A float TIFF passes PIL's decode but not the runner's OpenCV read: skipped with its name, not a crash."""
    tifffile = pytest.importorskip('tifffile')
    from basicsr.data import build_dataset

    import sclle_basicsr  # noqa: F401  (registration)
    cv2.imwrite(str(tmp_path / 'good.png'), np.full((20, 24, 3), 40, np.uint8))
    tifffile.imwrite(tmp_path / 'float.tif', np.full((20, 24), 0.2, np.float32))
    dataset, records = build_logging(build_dataset, {'dataroot_lq': str(tmp_path)})
    assert [osp.basename(p) for p in dataset.paths] == ['good.png']
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert f'Skipping cannot use image {tmp_path / "float.tif"}: float pixels (32-bit); convert it' in warnings[0]
    assert dataset[0]['lq'].shape == (3, 20, 24)


@pytest.mark.parametrize('check_images', [True, False])
def test_the_runner_reads_the_images_table1_lists(tmp_path, check_images):
    """The runner sees the images Table 1's identity row scores, screened or not: a hidden ``._x.png`` (macOS
    metadata) and a text file are not among them."""
    from basicsr.data import build_dataset

    from sclle_basicsr.utils.image_files import list_images
    for name in ('b.png', 'a.png'):
        cv2.imwrite(str(tmp_path / name), np.full((20, 24, 3), 40, np.uint8))
    (tmp_path / '._x.png').write_bytes(b'\x00\x05\x16\x07 AppleDouble junk')
    (tmp_path / 'notes.txt').write_text('not an image')
    dataset, records = build_logging(build_dataset, {'dataroot_lq': str(tmp_path), 'check_images': check_images})
    assert dataset.paths == list_images(str(tmp_path)) == [str(tmp_path / 'a.png'), str(tmp_path / 'b.png')]
    assert not [r for r in records if '._x.png' in r.getMessage()]
    assert [dataset[i]['lq'].shape for i in range(len(dataset))] == [(3, 20, 24)] * 2


def test_nan_weights_stop_the_run_naming_the_file_and_option(tmp_path, nan_weights):
    weights = nan_weights
    folder = tmp_path / 'lq'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), np.full((32, 40, 3), 30, np.uint8))
    proc, _, outputs, _ = run_test_runner(tmp_path, str(folder), str(weights))
    assert proc.returncode != 0 and outputs == {}
    assert (f'Checkpoint {weights} (path.pretrain_network_g): non-finite weights (NaN or Inf) in e_conv7.bias'
            in proc.stderr)
