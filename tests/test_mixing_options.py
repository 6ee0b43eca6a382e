"""The shipped option files that mix SCL-LLE losses into BasicSR models each train a step from YAML (tiny data,
a small EDSR, random VGG and a tiny random segmentor in place of the weights the files name)."""
import copy

import numpy as np
import pytest
import torch
import yaml
from basicsr.data import build_dataset
from basicsr.models import build_model
from test_options import load
from test_train_pipeline import TINY_SEGMENTOR
from test_unpaired_contrastive_dataset import coord_image, sample_folder, write
from torch.utils.data import default_collate

RANDOM_VGG = {'weights_format': 'random'}
FILES = {  # option file -> the losses it logs
    'options/train/train_EDSRx1_SRModel_SCL_pixel_opt.yml': {'l_pix', 'l_percep'},
    'options/train/train_EDSRx1_SRWithSCLLosses_paired.yml': {'l_pix', 'l_con', 'l_sc', 'l_fr', 'l_cc'},
}


def tiny_pairs(root, n=2):
    """Inputs, their ground truths and Cityscapes train-id labels (0..18, 255 = ignore)."""
    rng = np.random.default_rng(0)
    for k in range(n):
        write(root / 'lq' / f'img{k}.png', coord_image() // 3)
        write(root / 'gt' / f'img{k}.png', coord_image())
        label = rng.integers(0, 19, coord_image().shape[:2]).astype(np.uint8)
        label[:4] = 255
        write(root / 'label' / f'img{k}.png', label)
    return root


def tiny(opt, root):
    """The option file with tiny data and networks; everything else (model, losses, options) as shipped."""
    opt = copy.deepcopy(opt)
    data = opt['datasets']['train']
    for key, folder in (('dataroot_lq', 'lq'), ('dataroot_gt', 'gt'), ('dataroot_label', 'label')):
        if key in data:
            data[key] = str(root / folder)
    if 'dataroot_pos' in data:
        data['dataroot_pos'] = sample_folder(root / 'pos', 2, size=40)
        data['dataroot_neg'] = [sample_folder(root / f'neg{k}', 2, size=40) for k in range(len(data['dataroot_neg']))]
    data.update(crop_size=32, phase='train', scale=1)
    opt.update(is_train=True, dist=False, num_gpu=0, rank=0, world_size=1)
    opt['network_g'].update(num_feat=8, num_block=1)
    train = opt['train']
    for key in ('pixel_opt', 'perceptual_opt'):
        if 'vgg' in train.get(key, {}):
            train[key]['vgg'] = RANDOM_VGG
    if 'vgg_opt' in train:
        train['vgg_opt'] = RANDOM_VGG
    if 'segmentor_opt' in train:
        train['segmentor_opt'] = yaml.safe_load(TINY_SEGMENTOR)
    return opt


@pytest.mark.parametrize('path', sorted(FILES))
def test_shipped_mixing_file_trains_a_step(path, tmp_path):
    opt = tiny(load(path), tiny_pairs(tmp_path))
    dataset = build_dataset(opt['datasets']['train'])
    torch.manual_seed(0)
    model = build_model(opt)
    assert type(model).__name__ == opt['model_type']
    before = [p.detach().clone() for p in model.net_g.parameters()]
    model.feed_data(default_collate([dataset[0], dataset[1]]))
    model.optimize_parameters(1)
    assert set(model.log_dict) == FILES[path]
    assert all(torch.isfinite(torch.tensor(v)) for v in model.log_dict.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.net_g.parameters()))
