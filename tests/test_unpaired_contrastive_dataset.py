"""UnpairedContrastiveDataset: label pairing, aligned crops, independent sampling, reproducibility, errors."""
import logging
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset
from basicsr.utils import set_random_seed

import sclle_basicsr  # noqa: F401  (compat fixes, registration)
from sclle_basicsr.data.unpaired_contrastive_dataset import (
    CITYSCAPES_ID_TO_TRAINID,
    labelids_to_trainids,
)

REPO = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir))
from sclle_basicsr.utils.assets import assets_root  # noqa: E402

ASSETS = assets_root()

W, H, CROP = 48, 40, 32


def coord_image(w=W, h=H):
    """BGR uint8: R = 5x, G = 6y, B = 128 (exact in [0, 1] floats after /255)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.full_like(x, 128), 6 * y, 5 * x], axis=-1).astype(np.uint8)


def coord_label(w=W, h=H):
    y, x = np.mgrid[0:h, 0:w]
    return (y * w + x).astype(np.uint16)  # 16-bit PNG: every pixel its own id


def write(path, img):
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return str(path)


def sample_folder(folder, n, size=20, start=0):
    """n flat-colour images whose blue channel is 10 * (start + k): the value tells which file was drawn."""
    for k in range(n):
        write(osp.join(folder, f'{k:03d}.png'), np.full((size, size, 3), 10 * (start + k), np.uint8))
    return str(folder)


def drawn(tensor):
    """Index of a flat-colour sample from its blue value (RGB tensor: blue is channel 2)."""
    return int(round(float(tensor[2].mean()) * 255 / 10))


def flat_set(tmp_path, n=3, labels=True):
    for k in range(n):
        write(tmp_path / 'lq' / f'img{k}.png', coord_image())
        if labels:
            write(tmp_path / 'label' / f'img{k}.png', coord_label())
    return tmp_path


def make(tmp_path, **overrides):
    opt = dict(name='t', type='UnpairedContrastiveDataset', phase='train', dataroot_lq=str(tmp_path / 'lq'),
               dataroot_label=str(tmp_path / 'label'), crop_size=CROP, use_hflip=True, seed=0,
               num_classes=W * H, io_backend=dict(type='disk'))  # coord_label: one id per pixel
    opt.update(overrides)
    opt = {k: v for k, v in opt.items() if v is not None}
    return build_dataset(opt)


# ---------------------------------------------------------------------------------------------- pairing
def test_flat_layout_pairs_by_stem(tmp_path):
    flat_set(tmp_path)
    write(tmp_path / 'label' / 'unrelated.png', coord_label())  # extra labels are fine
    ds = make(tmp_path, phase='val')
    assert len(ds) == 3
    for k in range(3):
        item = ds[k]
        assert osp.basename(item['lq_path']) == f'img{k}.png'
        assert item['label_path'] == str(tmp_path / 'label' / f'img{k}.png')
        assert item['lq'].shape == (3, H, W) and item['lq'].dtype == torch.float32
        assert item['label'].shape == (H, W) and item['label'].dtype == torch.int64
        assert torch.equal(item['label'], torch.from_numpy(coord_label().astype(np.int64)))
        assert 'pos' not in item and 'neg' not in item


def test_cityscapes_layout_and_labelids_mapping(tmp_path):
    lq, gt = tmp_path / 'leftImg8bit' / 'train', tmp_path / 'gtFine' / 'train'
    ids = np.zeros((H, W), np.uint8)
    ids[:, :16], ids[:, 16:32], ids[:, 32:] = 7, 26, 3  # road, car, out of roi
    write(lq / 'aachen' / 'aachen_000000_000019_leftImg8bit.png', coord_image())
    write(gt / 'aachen' / 'aachen_000000_000019_gtFine_labelTrainIds.png', coord_label().astype(np.uint8))
    write(gt / 'aachen' / 'aachen_000000_000019_gtFine_color.png', coord_image())  # ignored
    write(lq / 'bochum' / 'bochum_000000_000313_leftImg8bit.png', coord_image())
    write(gt / 'bochum' / 'bochum_000000_000313_gtFine_labelIds.png', ids)
    write(lq / 'README.png', coord_image())  # not *_leftImg8bit: not an input in a Cityscapes tree
    ds = make(tmp_path, phase='val', dataroot_lq=str(tmp_path / 'leftImg8bit'),
              dataroot_label=str(tmp_path / 'gtFine'))
    assert len(ds) == 2
    first, second = ds[0], ds[1]
    assert first['label_path'].endswith('aachen_000000_000019_gtFine_labelTrainIds.png')
    assert torch.equal(first['label'], torch.from_numpy(coord_label().astype(np.uint8).astype(np.int64)))
    assert second['label_path'].endswith('bochum_000000_000313_gtFine_labelIds.png')
    assert set(second['label'][:, :16].unique().tolist()) == {0}
    assert set(second['label'][:, 16:32].unique().tolist()) == {13}
    assert set(second['label'][:, 32:].unique().tolist()) == {255}


def test_labelids_table_is_cityscapes():
    assert len(CITYSCAPES_ID_TO_TRAINID) == 19
    assert sorted(CITYSCAPES_ID_TO_TRAINID.values()) == list(range(19))
    lut = labelids_to_trainids(np.arange(256, dtype=np.uint8))
    assert lut[7] == 0 and lut[23] == 10 and lut[33] == 18 and lut[0] == 255 and lut[34] == 255


# ---------------------------------------------------------------------------------------------- alignment
def check_aligned(lq, label):
    """lq encodes (x, y) in R, G; the label encodes y * W + x; both must agree at every pixel."""
    rgb = (lq.numpy() * 255).round().astype(np.int64)
    x, y = rgb[0] // 5, rgb[1] // 6
    assert np.array_equal(label.numpy(), y * W + x)
    return x


def test_label_stays_aligned_under_crop_and_flip(tmp_path):
    flat_set(tmp_path, n=2)
    ds = make(tmp_path, repeat=20)
    flips, tops_lefts = 0, set()
    for i in range(len(ds)):
        item = ds[i]
        assert item['lq'].shape == (3, CROP, CROP) and item['label'].shape == (CROP, CROP)
        x = check_aligned(item['lq'], item['label'])
        step = np.diff(x[0])
        assert np.all(step == 1) or np.all(step == -1)  # a contiguous crop, maybe mirrored
        flips += int(step[0] == -1)
        tops_lefts.add((int(item['label'][0].min()) // W, int(x.min())))
    assert 0 < flips < len(ds)  # both flipped and unflipped crops occur
    assert len(tops_lefts) > 10  # crop positions vary


def test_small_input_is_resized_up_label_nearest(tmp_path):
    write(tmp_path / 'lq' / 'a.png', coord_image(20, 16))
    write(tmp_path / 'label' / 'a.png', coord_label(20, 16))
    item = make(tmp_path)[0]
    assert item['lq'].shape == (3, CROP, CROP) and item['label'].shape == (CROP, CROP)
    assert set(item['label'].unique().tolist()) <= set(coord_label(20, 16).ravel().tolist())


def test_val_phase_whole_image_no_flip_and_darken(tmp_path):
    flat_set(tmp_path, n=1)
    item = make(tmp_path, phase='val')[0]
    assert item['lq'].shape == (3, H, W)
    check_aligned(item['lq'], item['label'])
    assert np.all(np.diff((item['lq'][0].numpy() * 255).round()[0]) == 5)  # not flipped
    dark = make(tmp_path, phase='val', darken=dict(gamma=[2.0, 2.0], gain=[0.5, 0.5]))[0]
    assert torch.allclose(dark['lq'], 0.5 * item['lq']**2, atol=1e-6)
    ranged = make(tmp_path, darken=dict(gamma=[1.5, 3.0], gain=[0.3, 0.9]), repeat=4)
    means = [float(ranged[i]['lq'].mean()) for i in range(4)]
    assert max(means) < float(item['lq'].mean()) and len(set(means)) == 4


def test_extra_inputs_join_with_their_own_darkening(tmp_path):
    flat_set(tmp_path, n=2, labels=False)
    write(tmp_path / 'normal' / 'bright.png', coord_image())
    extra = [{'dataroot': str(tmp_path / 'normal'), 'darken': {'gamma': [2.0, 2.0], 'gain': [0.5, 0.5]}}]
    mixed = make(tmp_path, phase='val', dataroot_label=None, extra_inputs=extra)
    plain = make(tmp_path, phase='val', dataroot_label=None)
    assert len(mixed) == 3 and [osp.basename(mixed[i]['lq_path']) for i in range(3)] == [
        'img0.png', 'img1.png', 'bright.png']
    assert torch.equal(mixed[0]['lq'], plain[0]['lq'])  # dataroot_lq's inputs stay undarkened
    assert torch.allclose(mixed[2]['lq'], 0.5 * plain[0]['lq']**2, atol=1e-6)  # the extra folder's darkening


@pytest.mark.parametrize('extra, message', [
    ('folder', r'Option extra_inputs must be a list'),
    ([{'darken': {'gamma': 2.0}}], r'Option extra_inputs\[0\] must be a dict with the key dataroot'),
    ([{'dataroot': 'x', 'darkn': {}}], r'Option extra_inputs\[0\] must be a dict with the key dataroot'),
    ([{'dataroot': 'nowhere'}], r'\(option extra_inputs\[0\]\.dataroot\) does not exist'),
    ([{'dataroot': 'x', 'darken': {'gamma': [0, 1]}}], r'Option extra_inputs\[0\]\.darken\.gamma must be'),
])
def test_bad_extra_inputs_name_the_option(tmp_path, extra, message):
    flat_set(tmp_path, n=1, labels=False)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        make(tmp_path, dataroot_label=None, extra_inputs=extra)


def test_extra_inputs_need_labels_like_the_others(tmp_path):
    flat_set(tmp_path, n=1)
    write(tmp_path / 'normal' / 'unlabelled.png', coord_image())
    with pytest.raises(FileNotFoundError, match=r'No label for input .*unlabelled\.png'):
        make(tmp_path, extra_inputs=[{'dataroot': str(tmp_path / 'normal')}])


# ---------------------------------------------------------------------------------------------- sampling
def test_pos_neg_drawn_independently(tmp_path):
    flat_set(tmp_path, n=4, labels=False)
    pos = sample_folder(tmp_path / 'pos', 7)
    under = sample_folder(tmp_path / 'under', 5, start=7)
    over = sample_folder(tmp_path / 'over', 6, start=12)
    ds = make(tmp_path, dataroot_label=None, dataroot_pos=pos, dataroot_neg=[under, over], crop_size=16, repeat=25)
    items = [ds[i] for i in range(len(ds))]
    inp = np.array([i % 4 for i in range(len(ds))])
    p = np.array([drawn(it['pos']) for it in items])
    n0 = np.array([drawn(it['neg'][0]) - 7 for it in items])
    n1 = np.array([drawn(it['neg'][1]) - 12 for it in items])
    assert all(it['pos'].shape == (3, 16, 16) and len(it['neg']) == 2 for it in items)
    assert [osp.basename(it['pos_path']) for it in items] == [f'{v:03d}.png' for v in p]
    assert set(p) == set(range(7)) and set(n0) == set(range(5)) and set(n1) == set(range(6))
    # the positive is not a function of the input: each input meets several different positives
    assert all(len(set(p[inp == k])) >= 3 for k in range(4))
    # nor are the draws tied to each other
    assert not np.array_equal(p % 5, n0) and not np.array_equal(p % 6, n1) and not np.array_equal(n0, n1 % 5)
    contingency = np.zeros((7, 5))
    np.add.at(contingency, (p, n0), 1)
    assert (contingency > 0).sum() > 20  # 100 draws spread over most of the 35 (pos, neg) pairs
    # streams are separate: dropping the negatives leaves the positives unchanged
    ds_pos_only = make(tmp_path, dataroot_label=None, dataroot_pos=pos, crop_size=16, repeat=25)
    assert [drawn(ds_pos_only[i]['pos']) for i in range(len(ds))] == p.tolist()
    assert 'neg' not in ds_pos_only[0]
    # another seed, another draw
    other = make(tmp_path, dataroot_label=None, dataroot_pos=pos, crop_size=16, repeat=25, seed=1)
    assert [drawn(other[i]['pos']) for i in range(len(ds))] != p.tolist()


def test_single_neg_folder_gives_list_and_collates(tmp_path):
    flat_set(tmp_path, n=4)
    ds = make(tmp_path, dataroot_pos=sample_folder(tmp_path / 'pos', 3), dataroot_neg=sample_folder(
        tmp_path / 'neg', 3, start=5))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert batch['lq'].shape == (4, 3, CROP, CROP) and batch['label'].shape == (4, CROP, CROP)
    assert batch['pos'].shape == (4, 3, CROP, CROP)  # 20x20 samples resized up, then cropped
    assert isinstance(batch['neg'], list) and len(batch['neg']) == 1 and batch['neg'][0].shape == (4, 3, CROP, CROP)
    assert len(batch['neg_path']) == 1 and len(batch['neg_path'][0]) == 4


def test_pooled_negatives_draw_one_from_all_folders(tmp_path):
    flat_set(tmp_path, n=4, labels=False)
    pos = sample_folder(tmp_path / 'pos', 3)
    under = sample_folder(tmp_path / 'under', 5, start=7)
    over = sample_folder(tmp_path / 'over', 6, start=12)
    ds = make(tmp_path, dataroot_label=None, dataroot_pos=pos, dataroot_neg=[under, over], crop_size=16, repeat=25,
              neg_sampling='pooled')
    items = [ds[i] for i in range(len(ds))]
    assert all(len(it['neg']) == 1 and len(it['neg_path']) == 1 for it in items)
    # every one of the 11 negatives is drawn, under- and over-exposed alike, uniformly over the files
    assert {drawn(it['neg'][0]) for it in items} == set(range(7, 18))
    # the positives keep their own stream
    assert [drawn(it['pos']) for it in items] == [drawn(it['pos']) for it in
                                                   (make(tmp_path, dataroot_label=None, dataroot_pos=pos,
                                                         crop_size=16, repeat=25)[i] for i in range(len(ds)))]
    with pytest.raises(ValueError, match="neg_sampling must be one of per_folder, pooled; got 'mixed'"):
        make(tmp_path, dataroot_label=None, dataroot_neg=[under, over], neg_sampling='mixed')


def test_resize_references_keeps_the_whole_sample(tmp_path):
    flat_set(tmp_path, n=2, labels=False)
    gradient = np.repeat(np.linspace(0, 250, 64, dtype=np.float32)[None, :], 48, axis=0).astype(np.uint8)
    sample = write(tmp_path / 'pos' / 'ramp.png', np.stack([gradient] * 3, axis=-1))
    ds = make(tmp_path, dataroot_label=None, dataroot_pos=osp.dirname(sample), crop_size=16, resize_references=True)
    expected = cv2.resize(cv2.imread(sample).astype(np.float32) / 255, (16, 16), interpolation=cv2.INTER_AREA)
    for item in (ds[0], ds[1]):  # the same whole image for every item, not a crop of it
        assert torch.allclose(item['pos'], torch.from_numpy(expected[..., ::-1].copy()).permute(2, 0, 1), atol=1e-6)
    cropped = make(tmp_path, dataroot_label=None, dataroot_pos=osp.dirname(sample), crop_size=16)
    assert float(cropped[0]['pos'].max() - cropped[0]['pos'].min()) < 0.5  # a crop spans part of the ramp only


def test_reproducible_across_worker_counts_and_epochs(tmp_path):
    flat_set(tmp_path, n=6)
    pos = sample_folder(tmp_path / 'pos', 5)
    negs = [sample_folder(tmp_path / 'u', 4, start=5), sample_folder(tmp_path / 'o', 4, start=9)]

    def batches(num_workers, seed=7, epoch=0):
        set_random_seed(seed)  # BasicSR's manual_seed; the dataset takes torch.initial_seed() as its seed
        ds = make(tmp_path, seed=None, dataroot_pos=pos, dataroot_neg=negs,
                  darken=dict(gamma=[1.5, 3.0], gain=[0.4, 1.0]))
        ds.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(ds, batch_size=3, shuffle=True, num_workers=num_workers)
        return list(loader)

    def same(a, b):
        return all(
            torch.equal(x['lq'], y['lq']) and torch.equal(x['label'], y['label']) and torch.equal(x['pos'], y['pos'])
            and all(torch.equal(u, v) for u, v in zip(x['neg'], y['neg'])) and x['lq_path'] == y['lq_path']
            and x['neg_path'] == y['neg_path'] for x, y in zip(a, b))

    serial = batches(0)
    assert len(serial) == 2
    assert same(serial, batches(2))
    assert not same(serial, batches(0, seed=8))
    assert not same(serial, batches(0, epoch=1))


# ---------------------------------------------------------------------------------------------- errors
def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match='dataroot_lq'):
        make(tmp_path)
    (tmp_path / 'lq').mkdir()
    (tmp_path / 'lq' / 'notes.txt').write_text('x')
    with pytest.raises(ValueError, match='dataroot_lq'):
        make(tmp_path, dataroot_label=None)
    flat_set(tmp_path, n=1)
    (tmp_path / 'pos').mkdir()
    with pytest.raises(ValueError, match='dataroot_pos'):
        make(tmp_path, dataroot_pos=str(tmp_path / 'pos'))
    with pytest.raises(FileNotFoundError, match=r'dataroot_neg\[1\]'):
        make(tmp_path, dataroot_neg=[sample_folder(tmp_path / 'u', 1), str(tmp_path / 'nowhere')])
    with pytest.raises(ValueError, match='darken'):
        make(tmp_path, darken=dict(gamma=[3, 2]))


def test_input_without_label(tmp_path):
    flat_set(tmp_path, n=2)
    write(tmp_path / 'lq' / 'lonely.png', coord_image())
    with pytest.raises(FileNotFoundError, match=r'lonely\.png.*dataroot_label'):
        make(tmp_path)


def test_label_size_mismatch(tmp_path):
    flat_set(tmp_path, n=1)
    write(tmp_path / 'label' / 'img0.png', coord_label(W, H - 2))
    with pytest.raises(ValueError, match=r'img0\.png is 48x38 .* is 48x40'):
        make(tmp_path)


def test_unreadable_label_is_an_error(tmp_path):
    flat_set(tmp_path, n=1)
    (tmp_path / 'label' / 'img0.png').write_bytes(b'\x89PNG\r\n\x1a\n broken')
    with pytest.raises(ValueError, match='dataroot_label'):
        make(tmp_path)


def test_unreadable_samples_are_skipped_with_warning(tmp_path):
    flat_set(tmp_path, n=1)
    pos = sample_folder(tmp_path / 'pos', 2)
    good = cv2.imencode('.jpg', np.full((20, 20, 3), 90, np.uint8))[1].tobytes()
    (tmp_path / 'pos' / 'truncated.jpg').write_bytes(good[:len(good) // 2])
    (tmp_path / 'pos' / 'readme.txt').write_text('not an image')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger('basicsr')
    logger.addHandler(handler)
    try:
        ds = make(tmp_path, dataroot_pos=pos)
    finally:
        logger.removeHandler(handler)
    assert [osp.basename(p) for p in ds.pos_paths] == ['000.png', '001.png']
    warnings = ' '.join(r.getMessage() for r in records if r.levelno == logging.WARNING)
    assert 'truncated.jpg' in warnings and 'readme.txt' in warnings


# ---------------------------------------------------------------------------------------------- real assets
CITYSCAPES = osp.join(ASSETS, 'cityscapes_mini')
SICE = osp.join(ASSETS, 'sice_part1_subset')


@pytest.mark.skipif(not (osp.isdir(CITYSCAPES) and osp.isdir(SICE)),
                    reason=f'cityscapes_mini / sice_part1_subset not found under {ASSETS} (set SCLLE_ASSETS)')
def test_on_cityscapes_mini_and_sice(tmp_path):
    names = sorted(os.listdir(SICE))
    for sub, picked in (('pos', names[:3]), ('under', names[3:5]), ('over', names[5:7])):
        os.makedirs(tmp_path / sub)
        for name in picked:
            os.symlink(osp.join(SICE, name), tmp_path / sub / name)
    ds = make(tmp_path, dataroot_lq=osp.join(CITYSCAPES, 'leftImg8bit'), dataroot_label=osp.join(CITYSCAPES, 'gtFine'),
              dataroot_pos=str(tmp_path / 'pos'), dataroot_neg=[str(tmp_path / 'under'), str(tmp_path / 'over')],
              crop_size=384, darken=dict(gamma=[2.0, 3.0], gain=[0.5, 1.0]))
    assert len(ds) == 2
    assert all(p.endswith('_gtFine_labelTrainIds.png') for p in ds.label_paths)
    for i in range(2):  # 2048x1024 cropped; the 256x128 pseudo sample resized up to 768x384 first
        item = ds[i]
        assert item['lq'].shape == (3, 384, 384) and item['label'].shape == (384, 384)
        assert item['pos'].shape == (3, 384, 384) and [t.shape for t in item['neg']] == [(3, 384, 384)] * 2
        assert set(item['label'].unique().tolist()) <= set(range(19)) | {255}
    # the labelIds of the pseudo sample map onto its labelTrainIds (the pseudo files agree on ~99% of pixels)
    gt = osp.join(CITYSCAPES, 'gtFine', 'val', 'frankfurt', 'frankfurt_000000_000294_gtFine_')
    ids = cv2.imread(gt + 'labelIds.png', cv2.IMREAD_UNCHANGED)
    train_ids = cv2.imread(gt + 'labelTrainIds.png', cv2.IMREAD_UNCHANGED)
    assert (labelids_to_trainids(ids) == train_ids).mean() > 0.98


def test_label_ids_out_of_range_name_the_file_and_options(tmp_path):
    flat_set(tmp_path, n=2, labels=False)
    ok = np.full((H, W), 18, np.uint8)
    ok[0, :5] = 255  # the ignore index is allowed
    write(tmp_path / 'label' / 'img0.png', ok)
    bad = ok.copy()
    bad[3, 4], bad[5, 6] = 19, 40
    bad_path = write(tmp_path / 'label' / 'img1.png', bad)
    pattern = (rf'Label {re.escape(bad_path)} \(option dataroot_label\) has 2 pixel\(s\) with ids 19, 40 outside '
               r'\[0, 19\) \(option num_classes\) other than the ignore index 255 \(option ignore_index\)')
    with pytest.raises(ValueError, match=pattern):  # found when the dataset is built
        make(tmp_path, num_classes=None)
    unchecked = make(tmp_path, num_classes=None, check_images=False, phase='val')  # val: whole label, no crop
    assert int(unchecked[0]['label'].max()) == 255
    with pytest.raises(ValueError, match=pattern):  # and whenever the label is read
        unchecked[1]
    assert int(make(tmp_path, num_classes=41, phase='val')[1]['label'].max()) == 255
    other_ignore = make(tmp_path, num_classes=19, ignore_index=40, check_images=False, phase='val')
    with pytest.raises(ValueError, match=r'ids 19, 255 outside \[0, 19\)'):
        other_ignore[1]
