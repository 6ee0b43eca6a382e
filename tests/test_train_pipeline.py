"""BasicSR's train runner end to end on tiny data: checkpoints, validation NIQE, exact --auto_resume."""
import glob
import json
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
from conftest import TINY_SEGMENTOR_CFG

from sclle_basicsr.runner.run_lock import lock_path
from sclle_basicsr.utils.assets import REPO_ROOT

# A tiny DeepLabv3+ with random weights: the pipeline is real, the semantics are not (JSON is YAML flow style).
TINY_SEGMENTOR = ' ' + json.dumps({'allow_random_init': True, 'cfg_options': TINY_SEGMENTOR_CFG})

OPTIONS = """
name: {name}
model_type: SCLLLEModel
scale: 1
num_gpu: 0
manual_seed: 7
datasets:
  train:
    name: tiny
    type: UnpairedContrastiveDataset
    dataroot_lq: {data}/lq
    dataroot_label: {data}/label
    dataroot_pos: {data}/pos
    dataroot_neg: [{data}/under, {data}/over]
    crop_size: 32
    use_hflip: true
    darken: {{gamma: [1.5, 2.5], gain: [0.6, 1.0]}}
    io_backend: {{type: disk}}
    use_shuffle: true
    num_worker_per_gpu: {workers}
    batch_size_per_gpu: 2
    dataset_enlarge_ratio: 1
    prefetch_mode: {prefetch}
  val:
    name: val
    type: CheckedSingleImageDataset
    dataroot_lq: {data}/val
    io_backend: {{type: disk}}
network_g: {{type: DCENet, num_features: 8, init_std: 0.02}}
path:
  pretrain_network_g: ~
  resume_state: ~
train:
  optim_g: {{type: Adam, lr: !!float 1e-3, weight_decay: !!float 1e-4}}
  scheduler: {{type: MultiStepLR, milestones: [100000], gamma: 1.0}}
  total_iter: {total_iter}
  warmup_iter: -1
  grad_clip_norm: 0.1
  ema_decay: 0.9
  contrastive_opt: {{type: SCLContrastiveLoss}}
  semantic_opt: {{type: SemanticBrightnessLoss}}
  retention_opt: {{type: FeatureRetentionLoss}}
  color_opt: {{type: ColorConstancyLoss}}
  vgg_opt: {{weights_format: random}}
  segmentor_opt:{segmentor}
val:
  val_freq: {total_iter}
  save_img: true
  suffix: ~
  metrics:
    niqe: {{type: calculate_niqe, crop_border: 0}}
logger:
  print_freq: 1
  save_checkpoint_freq: {save_freq}
  use_tb_logger: false
dist_params: {{backend: gloo, port: 29500}}
"""


def write_image(path, rng, size, scale=1.0):
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx / w, yy / h, (xx + yy) / (h + w)], -1) * 0.5 + rng.random((h, w, 3)) * 0.5
    cv2.imwrite(str(path), np.clip(img * scale * 255, 0, 255).astype(np.uint8))


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp('train_data')
    rng = np.random.default_rng(0)
    for folder, count, size, scale in [('lq', 6, (40, 48), 1.0), ('pos', 3, (36, 36), 0.9), ('under', 3, (36, 36), 0.2),
                                       ('over', 3, (36, 36), 2.5), ('val', 1, (200, 200), 0.3)]:
        (root / folder).mkdir()
        for i in range(count):
            write_image(root / folder / f'img{i}.png', rng, size, scale)
    (root / 'label').mkdir()
    for i in range(6):
        label = rng.integers(0, 19, (40, 48)).astype(np.uint8)
        label[:5] = 255
        cv2.imwrite(str(root / 'label' / f'img{i}.png'), label)
    return root


class Run:
    """One experiment name under the repository's experiments/ folder, removed after the test."""

    def __init__(self, tmp_path, data):
        self.name = f'pytest_train_{uuid.uuid4().hex[:8]}'
        self.tmp_path, self.data = tmp_path, data
        self.root = osp.join(REPO_ROOT, 'experiments', self.name)

    def train(self, total_iter, *extra, workers=0, prefetch='~', save_freq=2, launcher=(sys.executable, )):
        opt_file = self.write_options(total_iter, workers=workers, prefetch=prefetch, save_freq=save_freq)
        proc = subprocess.run([*launcher, 'sclle_basicsr/train.py', '-opt', str(opt_file), *extra],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc

    def write_options(self, total_iter, workers=0, prefetch='~', save_freq=2):
        opt_file = self.tmp_path / f'train_{total_iter}_{workers}_{prefetch}.yml'
        opt_file.write_text(OPTIONS.format(name=self.name, data=self.data, total_iter=total_iter, workers=workers,
                                           prefetch=prefetch, save_freq=save_freq, segmentor=TINY_SEGMENTOR))
        return opt_file

    def log(self):
        return ''.join(open(f).read() for f in sorted(glob.glob(osp.join(self.root, 'train_*.log'))))

    def losses(self):
        """{iteration: the logged loss line}"""
        return {int(m.group(1)): m.group(2) for m in re.finditer(r'iter:\s*(\d+),.*?\]\s*(l_con.*)', self.log())}

    def weights(self, it):
        return torch.load(osp.join(self.root, 'models', f'net_g_{it}.pth'), map_location='cpu')

    def cleanup(self):
        for folder in ('experiments', 'tb_logger'):
            for path in glob.glob(osp.join(REPO_ROOT, folder, self.name + '*')):
                shutil.rmtree(path, ignore_errors=True)
        if osp.exists(lock_path(self.root)):  # left by a run killed with SIGKILL
            os.remove(lock_path(self.root))


@pytest.fixture
def run_factory(tmp_path, data):
    runs = []

    def make():
        runs.append(Run(tmp_path / str(len(runs)), data))
        (tmp_path / str(len(runs) - 1)).mkdir()
        return runs[-1]

    yield make
    for run in runs:
        run.cleanup()


def test_training_logs_every_loss_saves_checkpoints_and_validates(run_factory):
    run = run_factory()
    run.train(4)
    log = run.log()
    losses = run.losses()
    assert sorted(losses) == [1, 2, 3, 4]
    for key in ('l_con', 'l_sc', 'l_fr', 'l_cc', 'l_total'):
        assert all(f'{key}:' in line for line in losses.values()), key
    assert re.search(r'# niqe: [0-9.]+', log)
    state = run.weights(4)
    assert set(state) == {'params', 'params_ema'} and 'e_conv7.weight' in state['params']
    assert not torch.equal(state['params']['e_conv1.weight'], run.weights(2)['params']['e_conv1.weight'])
    assert osp.isfile(osp.join(run.root, 'training_states', '4.state'))
    assert glob.glob(osp.join(run.root, 'visualization', 'img0', '*.png'))


# (num_worker_per_gpu, prefetch_mode) of each resumed leg, each resumed once mid-epoch and once at an epoch's end;
# workers come first: a resume inside epoch 0 is the one that the prefetcher's first iterator could spoil.
RESUME_SETTINGS = [(1, '~'), (2, 'cpu'), (0, 'cpu'), (2, '~'), (1, 'cpu'), (0, '~')]


def test_auto_resume_is_exact_with_workers_and_prefetch_modes(run_factory):
    """One run is stopped and resumed with --auto_resume again and again (3-iteration epochs: stopped at 2, 3, 5, 6,
    ...), each setting of RESUME_SETTINGS resuming once mid-epoch and once from an epoch's last iteration.  Every
    iteration logs the losses of an uninterrupted run, and every stop has its weights, bit for bit (the data draws
    do not depend on the number of workers, so one uninterrupted run is the reference for all settings)."""
    stops = [stop for epoch in range(len(RESUME_SETTINGS)) for stop in (3 * epoch + 2, 3 * epoch + 3)]
    whole = run_factory()
    whole.train(stops[-1], save_freq=1)
    expected = whole.losses()
    resumed = run_factory()
    resumed.train(stops[0], save_freq=1)
    for i, (start, stop) in enumerate(zip(stops, stops[1:])):
        workers, prefetch = RESUME_SETTINGS[i // 2]
        resumed.train(stop, '--auto_resume', workers=workers, prefetch=prefetch, save_freq=1)
        where = f'resumed at {start} ({"mid-epoch" if start % 3 else "epoch end"}) with {workers} workers, ' \
                f'prefetch_mode {prefetch}'
        got = resumed.losses()
        for it in range(start + 1, stop + 1):
            assert got.get(it) == expected[it], f'{where}, iteration {it}: {got.get(it)} != {expected[it]}'
        for key in ('params', 'params_ema'):
            for name, value in whole.weights(stop)[key].items():
                assert torch.equal(resumed.weights(stop)[key][name], value), (where, key, name)
    assert resumed.log().count('Resuming training from epoch') == len(stops) - 1


def test_reproducible_with_data_workers(run_factory):
    serial, parallel = run_factory(), run_factory()
    serial.train(2)
    parallel.train(2, workers=2)
    assert serial.losses() == parallel.losses()


def test_two_process_ddp_on_cpu_through_basicsr_launcher(run_factory):
    """--launcher pytorch with two CPU processes (gloo): both ranks train, rank 0 logs and saves."""
    run = run_factory()
    launcher = (sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29533')
    proc = run.train(2, '--launcher', 'pytorch', launcher=launcher)
    assert 'backend is gloo instead of nccl' in proc.stdout
    assert re.search(r'^\s*dist: True$', run.log(), re.M) and re.search(r'^\s*world_size: 2$', run.log(), re.M)
    assert sorted(run.losses()) == [1, 2]
    assert set(run.weights(2)) == {'params', 'params_ema'}
