"""PairedContrastiveDataset: gt paired by name, sharing the input's crop and flip (not its darkening); errors."""
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from test_unpaired_contrastive_dataset import CROP, H, W, coord_image, coord_label, sample_folder, write

import sclle_basicsr  # noqa: F401  (compat fixes, registration)
from sclle_basicsr.data.paired_contrastive_dataset import PairedContrastiveDataset


def paired_opt(root, **extra):
    opt = {'name': 'paired', 'type': 'PairedContrastiveDataset', 'phase': 'train', 'dataroot_lq': str(root / 'lq'),
           'dataroot_gt': str(root / 'gt'), 'dataroot_label': str(root / 'label'),
           'dataroot_pos': sample_folder(root / 'pos', 2), 'dataroot_neg': [sample_folder(root / 'under', 2)],
           'crop_size': CROP, 'seed': 3, 'io_backend': {'type': 'disk'},
           'num_classes': W * H}  # coord_label: one id per pixel
    opt.update(extra)
    return opt


def paired_set(root, n=3):
    for k in range(n):
        write(root / 'lq' / f'img{k}.png', coord_image() // 2)
        write(root / 'gt' / 'nested' / f'img{k}.png', coord_image())
        write(root / 'label' / f'img{k}.png', coord_label())
    return root


def test_gt_shares_crop_and_flip_with_input_and_label(tmp_path):
    dataset = build_dataset(paired_opt(paired_set(tmp_path)))
    assert isinstance(dataset, PairedContrastiveDataset)
    for index in range(len(dataset)):
        item = dataset[index]
        assert set(item) >= {'lq', 'gt', 'label', 'pos', 'neg', 'gt_path'}
        assert item['gt'].shape == item['lq'].shape == (3, CROP, CROP)
        assert item['gt_path'].endswith(f'img{index}.png')
        # lq = gt // 2 pixel by pixel, so any misalignment of the crops shows
        torch.testing.assert_close(item['lq'], torch.floor(item['gt'] * 255 / 2) / 255, atol=1e-6, rtol=0)
        # the label holds each pixel's own id (y * W + x): it tells where the gt pixels came from
        red = torch.round(item['gt'][0] * 255 / 5).long()  # R = 5x in the coordinate image
        torch.testing.assert_close(red, item['label'] % 48)


def test_darkening_applies_to_the_input_only(tmp_path):
    root = tmp_path
    for k in range(2):
        write(root / 'images' / f'img{k}.png', coord_image())
    opt = paired_opt(root, dataroot_lq=str(root / 'images'), dataroot_gt=str(root / 'images'), phase='val',
                     darken={'gamma': [2.0, 2.0], 'gain': [1.0, 1.0]})
    del opt['dataroot_label']
    item = build_dataset(opt)[0]
    torch.testing.assert_close(item['gt'].numpy(), np.transpose(coord_image()[:, :, ::-1], (2, 0, 1)) / 255.0,
                               check_dtype=False)
    torch.testing.assert_close(item['lq'], item['gt']**2)


def test_missing_gt_and_size_mismatch_are_named(tmp_path):
    root = paired_set(tmp_path)
    with pytest.raises(ValueError, match='dataroot_gt'):
        build_dataset({k: v for k, v in paired_opt(root).items() if k != 'dataroot_gt'})
    (root / 'gt' / 'nested' / 'img1.png').unlink()
    with pytest.raises(FileNotFoundError, match=r'img1\.png.*option dataroot_gt'):
        build_dataset(paired_opt(root))
    write(root / 'gt' / 'img1.png', coord_image(w=20))
    with pytest.raises(ValueError, match='but its input .*option dataroot_gt'):
        build_dataset(paired_opt(root))
    write(root / 'gt' / 'img1.png', coord_image())
    write(root / 'gt' / 'other' / 'img1.png', coord_image())
    with pytest.raises(ValueError, match='Two ground truths'):
        build_dataset(paired_opt(root))
