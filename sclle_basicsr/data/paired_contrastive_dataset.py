"""Paired training data for BasicSR models that add SCL-LLE losses: gt beside positives, negatives and labels."""
import os.path as osp

from basicsr.utils.registry import DATASET_REGISTRY

from sclle_basicsr.data.image_checks import probe_image
from sclle_basicsr.data.unpaired_contrastive_dataset import (
    UnpairedContrastiveDataset,
    _require_folder,
    _stem,
    check_companion,
)
from sclle_basicsr.utils.image_files import is_image_file, walk_files


@DATASET_REGISTRY.register()
class PairedContrastiveDataset(UnpairedContrastiveDataset):
    """:class:`UnpairedContrastiveDataset` plus a ground truth per input, for paired models (SRModel,
    SRWithSCLLossesModel) that may use all four SCL-LLE losses.

    Options: those of :class:`UnpairedContrastiveDataset`, plus
        dataroot_gt (str): ground truths, searched recursively.  The gt of input ``K`` (its name without
            ``_leftImg8bit`` and extension) is the image file named ``K``; every input needs one, of the input's size
            (enhancement pairs, scale 1).  ``dataroot_gt`` may be ``dataroot_lq`` itself with ``darken``: the
            darkened input is then paired with the original image.

    The gt shares the input's resize, crop and flip but not its darkening.  Items carry ``gt`` (3xHxW float32 RGB
    in [0, 1]) and ``gt_path`` besides the unpaired dataset's keys.
    """

    def __init__(self, opt):
        if opt.get('dataroot_gt') is None:
            raise ValueError('Option dataroot_gt (the ground-truth folder) is required by PairedContrastiveDataset; '
                             'use UnpairedContrastiveDataset without ground truth.')
        super().__init__(opt)
        self.gt_folder = _require_folder(opt['dataroot_gt'], 'dataroot_gt')
        self.gt_paths = self._pair_ground_truths(bool(opt.get('check_images', True)))

    def _pair_ground_truths(self, check):
        index = {}
        for path in walk_files(self.gt_folder, recursive=True):
            if not is_image_file(path):
                continue
            previous = index.setdefault(_stem(path), path)
            if previous != path:
                raise ValueError(f'Two ground truths named {_stem(path)!r} in {osp.abspath(self.gt_folder)} '
                                 f'(option dataroot_gt): {previous} and {path}.')
        gt_paths = []
        for lq_path in self.lq_paths:
            key = self._input_key(lq_path)
            gt_path = index.get(key)
            if gt_path is None:
                raise FileNotFoundError(f'No ground truth for input {lq_path} in {osp.abspath(self.gt_folder)} '
                                        f'(option dataroot_gt): expected {key}.<image ext> somewhere in that tree.')
            check_companion(gt_path, lq_path, 'ground truth', 'dataroot_gt', read=probe_image if check else None)
            gt_paths.append(gt_path)
        return gt_paths

    def _aligned_images(self, index, img):
        gt = self._read_image(self.gt_paths[index], 'gt')
        if gt.shape != img.shape:
            raise ValueError(f'Ground truth {self.gt_paths[index]} is {gt.shape[1]}x{gt.shape[0]} but its input '
                             f'{self.lq_paths[index]} is {img.shape[1]}x{img.shape[0]} (option dataroot_gt).')
        return {'gt': gt}

    def __getitem__(self, index):
        item = super().__getitem__(index)
        item['gt_path'] = self.gt_paths[index % len(self.lq_paths)]
        return item
