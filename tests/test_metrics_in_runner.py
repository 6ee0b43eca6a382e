"""UNIQUE and LOE named in an option file's ``val.metrics`` and logged by BasicSR's test runner, with the values the
metrics give on the saved images; missing UNIQUE weights end the run with one message."""
import glob
import os
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
import yaml

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.metrics import calculate_loe, calculate_unique
from sclle_basicsr.metrics import unique_metric as um
from sclle_basicsr.utils.assets import REPO_ROOT


def textured(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = (60 + 40 * np.sin(xx / 7.0) * np.cos(yy / 11.0))[..., None] + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def run_runner(tmp_path, metrics):
    """BasicSR's test runner on two dark images with a random DCE-Net: (process, log, {name: (input, output)})."""
    torch.manual_seed(0)
    torch.save(DCENet().state_dict(), tmp_path / 'dcenet.pth')
    folder = tmp_path / 'lq'
    folder.mkdir(exist_ok=True)
    for i in range(2):
        cv2.imwrite(str(folder / f'im{i}.png'), textured(160, 200, i))
    name = f'pytest_{uuid.uuid4().hex[:8]}'
    opt = {'name': name, 'model_type': 'SCLLLEModel', 'scale': 1, 'num_gpu': 0, 'manual_seed': 0,
           'datasets': {'test_1': {'name': 'mini', 'type': 'CheckedSingleImageDataset', 'dataroot_lq': str(folder),
                                   'io_backend': {'type': 'disk'}}},
           'network_g': {'type': 'DCENet'},
           'path': {'pretrain_network_g': str(tmp_path / 'dcenet.pth'), 'param_key_g': None},
           'val': {'save_img': True, 'suffix': None, 'metrics': metrics}}
    (tmp_path / 'test.yml').write_text(yaml.safe_dump(opt))
    results = osp.join(REPO_ROOT, 'results', name)
    env = {k: v for k, v in os.environ.items() if k != um.WEIGHTS_ENV}
    env['TORCH_HOME'] = str(tmp_path / 'torch_home')  # no UNIQUE.pt of this machine's cache
    try:
        proc = subprocess.run([sys.executable, 'sclle_basicsr/test.py', '-opt', str(tmp_path / 'test.yml')],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
        log = ''.join(open(f).read() for f in glob.glob(osp.join(results, '*.log')))
        images = {n: (cv2.imread(str(folder / f'{n}.png')),
                      cv2.imread(osp.join(results, 'visualization', 'mini', f'{n}_{name}.png')))
                  for n in ('im0', 'im1')}
    finally:
        shutil.rmtree(results, ignore_errors=True)
    return proc, log, images


def logged(log, metric):
    found = re.findall(rf'# {metric}: (-?[0-9.]+)', log)
    assert found, f'no {metric} in the log:\n{log[-2000:]}'
    return float(found[-1])


@pytest.fixture
def unique_weights(unique_network):
    return unique_network[1]


def test_unique_and_loe_in_val_metrics_are_logged(tmp_path, unique_weights):
    metrics = {'niqe': {'type': 'calculate_niqe', 'crop_border': 0, 'better': 'lower'},
               'unique': {'type': 'calculate_unique', 'weights': unique_weights},
               'loe': {'type': 'calculate_loe', 'better': 'lower'}}
    proc, log, images = run_runner(tmp_path, metrics)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the model scores its 8-bit output (the saved PNG) and hands LOE the 8-bit input
    unique = np.mean([calculate_unique(out, weights=unique_weights) for _, out in images.values()])
    loe = np.mean([calculate_loe(out, lq=inp) for inp, out in images.values()])
    assert logged(log, 'unique') == pytest.approx(unique, abs=5.1e-5)
    assert logged(log, 'loe') == pytest.approx(loe, abs=5.1e-5)
    assert loe > 0  # a random network changes the lightness order
    assert 'cannot score' not in log


def test_missing_unique_weights_end_the_run_with_one_message(tmp_path):
    missing = tmp_path / 'nowhere' / 'UNIQUE.pt'
    proc, log, _ = run_runner(tmp_path, {'unique': {'type': 'calculate_unique', 'weights': str(missing)}})
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert output.count(f'UNIQUE weights not found: {missing} (from the metric option weights)') == 1, output[-3000:]
    assert um.PYIQA_URL in output and 'cannot score' not in log
