"""Mixed-precision training on the CPU: fp16 and bf16 autocast with real images and the real Caffe VGG-16.

PyTorch's CPU autocast runs fp16 too, so the fp16 path a GPU takes (fp16 VGG features, the GradScaler, the losses'
float32 arithmetic) is checked here without one; only its speed is the GPU's.
"""
import logging
import os
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from basicsr.models import build_model
from conftest import TINY_SEGMENTOR_CFG, require_asset

from sclle_basicsr.data.exposure_split import classify_level, mean_grey_level
from sclle_basicsr.data.unpaired_contrastive_dataset import UnpairedContrastiveDataset
from sclle_basicsr.losses.scl_losses import SCLLosses
from sclle_basicsr.losses.vgg_features import gram_matrix

LOSSES = ('l_con', 'l_sc', 'l_fr', 'l_cc')


@pytest.fixture
def basicsr_warnings():
    """The warnings logged by BasicSR's logger (where the models report) during the test."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: records.append(record.getMessage())
    logger = logging.getLogger('basicsr')
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_gram_matrix_is_float32_under_autocast(dtype):
    """Caffe-VGG-sized features (relu2_2 reaches about 24 after the 1/255 scale): in fp16 a Gram entry, a sum of
    products over 128x128 pixels before the division, passes 65504."""
    feat = torch.rand(2, 128, 128, 128, generator=torch.Generator().manual_seed(0)) * 24
    expected = gram_matrix(feat)
    with torch.autocast('cpu', dtype=dtype):
        got = gram_matrix(feat)
        from_half = gram_matrix(feat.to(dtype))
    assert got.dtype == from_half.dtype == torch.float32
    assert torch.equal(got, expected)
    assert torch.allclose(from_half, expected, rtol=1e-2)


@pytest.fixture(scope='module')
def real_data(tmp_path_factory):
    """``(dataset options, batch(crop))``: two crops of the Cityscapes images of the shared assets (darkened, with
    their labels) and SICE positives, under- and over-exposed negatives picked by mean grey level, as the recipe's
    dataset gives them."""
    cityscapes = require_asset('cityscapes_mini')
    sice = require_asset('sice_part1_subset')
    require_asset('weights', 'vgg16_imagenet_caffe_bgr_features.pth')
    root = tmp_path_factory.mktemp('sice_split')
    picked = {'positive': [], 'under': [], 'over': []}
    for name in sorted(os.listdir(sice)):
        kind = classify_level(mean_grey_level(osp.join(sice, name)))
        if kind in picked and len(picked[kind]) < 2:
            picked[kind].append(name)
            os.makedirs(root / kind, exist_ok=True)
            os.symlink(osp.join(sice, name), root / kind / name)
        if all(len(names) == 2 for names in picked.values()):
            break
    dataset_opt = {'name': 'real', 'type': 'UnpairedContrastiveDataset', 'phase': 'train', 'seed': 0,
                   'dataroot_lq': osp.join(cityscapes, 'leftImg8bit'), 'dataroot_label': osp.join(cityscapes, 'gtFine'),
                   'dataroot_pos': str(root / 'positive'), 'dataroot_neg': [str(root / 'under'), str(root / 'over')],
                   'crop_size': 48, 'use_hflip': True, 'darken': {'gamma': [2.0, 3.0], 'gain': [0.5, 1.0]},
                   'io_backend': {'type': 'disk'}}

    def batch(crop):
        dataset = UnpairedContrastiveDataset(dict(dataset_opt, crop_size=crop))
        return torch.utils.data.default_collate([dataset[0], dataset[1]])

    return dataset_opt, batch


@pytest.fixture(scope='module')
def real_batch(real_data):
    """48x48 crops: fp16 training steps on the CPU are slow (PyTorch's CPU fp16 convolution backward)."""
    dataset_opt, batch = real_data
    return dataset_opt, batch(48)


def model_options(dataset_opt, amp=None, training_states=None):
    train = {'contrastive_opt': {'type': 'SCLContrastiveLoss'}, 'semantic_opt': {'type': 'SemanticBrightnessLoss'},
             'retention_opt': {'type': 'FeatureRetentionLoss'}, 'color_opt': {'type': 'ColorConstancyLoss'},
             'vgg_opt': {'weights_path': require_asset('weights', 'vgg16_imagenet_caffe_bgr_features.pth'),
                         'weights_format': 'caffe_bgr'},
             # a tiny random DeepLabv3+: the real mmseg code path, under autocast like the Cityscapes one
             'segmentor_opt': {'allow_random_init': True, 'cfg_options': TINY_SEGMENTOR_CFG},
             'optim_g': {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 1e-4},
             'scheduler': {'type': 'MultiStepLR', 'milestones': [10**9], 'gamma': 1.0},
             'grad_clip_norm': 0.1, 'ema_decay': 0.9}
    if amp:
        train['amp'] = {'dtype': amp}
    return {'name': 'mixed_precision', 'model_type': 'SCLLLEModel', 'scale': 1, 'is_train': True, 'dist': False,
            'rank': 0, 'world_size': 1, 'num_gpu': 0, 'datasets': {'train': dataset_opt},
            'network_g': {'type': 'DCENet', 'init_std': 0.02},
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                     'training_states': str(training_states)}, 'train': train}


def build(dataset_opt, amp=None, training_states=None):
    torch.manual_seed(0)
    return build_model(model_options(dataset_opt, amp, training_states))


def train_steps(model, batch, steps):
    """The logged losses of each step, and whether the step changed the weights."""
    logs = []
    for it in range(steps):
        before = model.get_bare_model(model.net_g).e_conv1.weight.detach().clone()
        model.feed_data(batch)
        model.optimize_parameters(it)
        moved = not torch.equal(before, model.get_bare_model(model.net_g).e_conv1.weight)
        logs.append((dict(model.log_dict), moved))
    return logs


def test_the_losses_under_fp16_autocast_at_a_training_crop_match_fp32(real_data):
    """All four losses at 256x256, the regime where fp16 Gram matrices overflow: under fp16 autocast the losses
    and their gradient are finite and match fp32 (DCE-Net's output stood in by a brightened input)."""
    dataset_opt, batch = real_data
    data = batch(256)
    train_opt = model_options(dataset_opt)['train']
    losses = SCLLosses(train_opt)
    curves = torch.rand(2, 24, 256, 256, generator=torch.Generator().manual_seed(0)) * 0.2 - 0.1
    results = {}
    for name, dtype in (('fp32', None), ('fp16', torch.float16)):
        pred = data['lq'].pow(0.5).requires_grad_()
        with torch.autocast('cpu', dtype=dtype or torch.float32, enabled=dtype is not None):
            total, logs = losses(pred, lq=data['lq'], curves=curves, pos=data['pos'], neg=data['neg'],
                                 label=data['label'])
        (total * 1024).backward()  # a loss scale, as the GradScaler's
        results[name] = ({k: float(v) for k, v in logs.items()}, pred.grad / 1024)
    (fp32, fp32_grad), (fp16, fp16_grad) = results['fp32'], results['fp16']
    for key in LOSSES:
        assert abs(fp16[key] - fp32[key]) <= 2e-3 * abs(fp32[key]), (key, fp16[key], fp32[key])
    assert torch.isfinite(fp16_grad).all()
    assert F.cosine_similarity(fp16_grad.flatten(), fp32_grad.flatten(), dim=0) > 0.99


def test_fp16_and_bf16_training_is_finite_moves_the_weights_and_matches_fp32(real_batch, basicsr_warnings):
    """fp16: the GradScaler starts at 65536, so the first steps overflow in the backward and are skipped, halving
    the scale; then the weights move.  Every loss is finite at every step and close to the fp32 one."""
    dataset_opt, batch = real_batch
    fp32 = train_steps(build(dataset_opt), batch, 1)[0][0]
    fp16_model = build(dataset_opt, 'fp16')
    assert any('fp16 on a CPU' in message for message in basicsr_warnings)
    fp16 = train_steps(fp16_model, batch, 4)
    for logs, moved in fp16:
        assert all(torch.isfinite(torch.tensor(logs[k])) for k in LOSSES + ('l_total', )), logs
    assert any(moved for _, moved in fp16) and fp16[-1][1]
    assert fp16_model.grad_scaler.get_scale() < 65536.0  # it did back off from its first scale
    bf16 = train_steps(build(dataset_opt, 'bf16'), batch, 2)
    assert all(moved for _, moved in bf16)
    # relative tolerances; bf16 keeps 8 bits: L_fr, a small distance between near-equal VGG features, moves most
    tolerances = {'fp16': dict.fromkeys(LOSSES, 2e-3), 'bf16': dict(dict.fromkeys(LOSSES, 1e-2), l_fr=5e-2)}
    for name, logs in (('fp16', fp16[0][0]), ('bf16', bf16[0][0])):
        for key, tolerance in tolerances[name].items():
            assert abs(logs[key] - fp32[key]) <= tolerance * abs(fp32[key]), (name, key, logs[key], fp32[key])


def test_the_grad_scaler_state_is_saved_and_resumed(real_batch, tmp_path, basicsr_warnings):
    """A run resumed from its training state continues with its loss scale: same scale, same weights as the run
    that went on; a state without a GradScaler entry (older, or from a run without fp16) restarts the scale."""
    dataset_opt, batch = real_batch
    whole = build(dataset_opt, 'fp16', tmp_path)
    train_steps(whole, batch, 2)  # both skipped (overflow): the scale is down to 16384
    whole.save_training_state(epoch=0, current_iter=2)
    state = torch.load(tmp_path / '2.state', map_location='cpu', weights_only=False)
    assert state['grad_scaler']['scale'] == whole.grad_scaler.get_scale() < 65536.0
    net = {k: v.clone() for k, v in whole.get_bare_model(whole.net_g).state_dict().items()}
    ema = {k: v.clone() for k, v in whole.net_g_ema.state_dict().items()}
    assert train_steps(whole, batch, 1)[0][1]

    resumed = build(dataset_opt, 'fp16', tmp_path)
    resumed.get_bare_model(resumed.net_g).load_state_dict(net)
    resumed.net_g_ema.load_state_dict(ema)
    resumed.resume_training(state)
    assert resumed.grad_scaler.get_scale() == state['grad_scaler']['scale']
    train_steps(resumed, batch, 1)  # from 65536 it would overflow again and skip the step
    assert resumed.grad_scaler.get_scale() == whole.grad_scaler.get_scale()
    for name, value in whole.get_bare_model(whole.net_g).state_dict().items():
        assert torch.equal(resumed.get_bare_model(resumed.net_g).state_dict()[name], value), name

    old = {k: v for k, v in state.items() if k != 'grad_scaler'}
    restarted = build(dataset_opt, 'fp16', tmp_path)
    restarted.resume_training(old)
    assert restarted.grad_scaler.get_scale() == 65536.0
    assert any('holds no GradScaler state' in message for message in basicsr_warnings)
    fp32 = build(dataset_opt, training_states=tmp_path)
    fp32.save_training_state(epoch=0, current_iter=1)
    assert 'grad_scaler' not in torch.load(tmp_path / '1.state', map_location='cpu', weights_only=False)
