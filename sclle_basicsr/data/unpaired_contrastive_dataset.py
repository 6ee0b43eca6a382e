"""SCL-LLE training data: inputs with semantic labels, plus unpaired positives and negatives."""
import io
import os
import os.path as osp

import cv2
import numpy as np
import torch
from basicsr.utils import FileClient, get_root_logger, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from PIL import Image
from torch.utils import data as data

from sclle_basicsr.data.image_checks import screen_image_paths
from sclle_basicsr.utils.image_files import is_image_file, walk_files

IGNORE_INDEX = 255
INPUT_SUFFIX = '_leftImg8bit'
TRAIN_IDS_SUFFIX = '_gtFine_labelTrainIds'
LABEL_IDS_SUFFIX = '_gtFine_labelIds'
NEG_SAMPLING = ('per_folder', 'pooled')
OTHER_GT_SUFFIXES = ('_gtFine_color', '_gtFine_instanceIds', '_gtFine_polygons', '_gtCoarse_color',
                     '_gtCoarse_instanceIds')

# Cityscapes label id -> train id, from cityscapesScripts (mcordts/cityscapesScripts,
# cityscapesscripts/helpers/labels.py, the `labels` table: id, trainId).  Ids 0-6, 9, 10, 14-16, 18, 29, 30 and
# the license plate (-1, never stored in a uint8 PNG) have trainId 255 (ignore); every id not listed maps to 255.
CITYSCAPES_ID_TO_TRAINID = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13, 27: 14,
    28: 15, 31: 16, 32: 17, 33: 18
}
_ID_TO_TRAINID_LUT = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _id, _train_id in CITYSCAPES_ID_TO_TRAINID.items():
    _ID_TO_TRAINID_LUT[_id] = _train_id


def labelids_to_trainids(label):
    """Map a Cityscapes ``labelIds`` array to ``trainIds`` (255 = ignore)."""
    label = np.asarray(label)
    if label.min(initial=0) < 0 or label.max(initial=0) > 255:
        raise ValueError(f'labelIds outside 0..255 (min {label.min()}, max {label.max()})')
    return _ID_TO_TRAINID_LUT[label.astype(np.intp)]


def _require_folder(folder, option):
    if not isinstance(folder, (str, os.PathLike)):
        raise ValueError(f'Option {option} must be a folder path, got {folder!r}.')
    if not osp.isdir(folder):
        raise FileNotFoundError(f'Folder {osp.abspath(folder)} (option {option}) does not exist or is not a folder.')
    return str(folder)


def _stem(path):
    return osp.splitext(osp.basename(path))[0]


def _label_key(path):
    """(key, kind) of a label file: kind 'trainIds' or 'labelIds'; None for other Cityscapes ground-truth files."""
    stem = _stem(path)
    if stem.endswith(TRAIN_IDS_SUFFIX):
        return stem[:-len(TRAIN_IDS_SUFFIX)], 'trainIds'
    if stem.endswith(LABEL_IDS_SUFFIX):
        return stem[:-len(LABEL_IDS_SUFFIX)], 'labelIds'
    if stem.endswith(OTHER_GT_SUFFIXES):
        return None
    return stem, 'trainIds'


def check_companion(path, input_path, what, option, read=None):
    """Check that ``path`` (a label or ground truth of ``input_path``) has the input's size and, with ``read``,
    that it can be read; the errors name both files and ``option``."""
    if read is not None:
        try:
            read(path)
        except OSError as err:
            raise ValueError(f'Unreadable {what} (option {option}): {err}') from err
    size, input_size = _image_size(path), _image_size(input_path)
    if size != input_size:
        raise ValueError(f'The {what} {path} is {size[1]}x{size[0]} but its input {input_path} is '
                         f'{input_size[1]}x{input_size[0]} (option {option}).')


def _image_size(path):
    """(height, width) read from the header only."""
    with Image.open(path) as img:
        return img.height, img.width


@DATASET_REGISTRY.register()
class UnpairedContrastiveDataset(data.Dataset):
    """Low-light inputs (with optional semantic labels) and unpaired positive / negative exposure samples.

    Options (``opt``):
        dataroot_lq (str): inputs.  A Cityscapes ``leftImg8bit`` tree (searched recursively for
            ``*_leftImg8bit.<ext>``) or, when no such file exists, the image files directly in the folder.
        dataroot_label (str, optional): labels, searched recursively.  For an input with key ``K`` (its name
            without ``_leftImg8bit`` and extension) the label is ``K_gtFine_labelTrainIds.png``, else
            ``K_gtFine_labelIds.png`` (mapped to trainIds with ``CITYSCAPES_ID_TO_TRAINID``), else a file named
            ``K`` with an image extension (values already trainIds).  255 = ignore.  Every input needs its label
            and labels must have their image's size.
        num_classes (int): label ids must lie in ``[0, num_classes)`` or equal ``ignore_index``; default 19 (the
            Cityscapes train ids the segmentor predicts).  Checked whenever a label is read (and, with
            ``check_images``, once for every label when the dataset is built): an id out of range is an error
            naming the file, instead of a failure inside the loss some iterations later.
        ignore_index (int): the label id of unlabelled pixels, default 255.
        dataroot_pos (str, optional): normal-light images (flat folder).  Key ``pos`` only when given.
        dataroot_neg (str | list[str], optional): one folder per kind of negative (e.g. under-, over-exposed).
            Key ``neg`` (always a list, one entry per folder) only when given.
        crop_size (int): training crop, default 384.  Inputs smaller than it (either side) are resized up so their
            short side equals it (bilinear; labels nearest), then cropped.  Positives and negatives are randomly
            cropped to it, resized up the same way first when smaller (unless ``resize_references``).
        resize_references (bool): resize each positive and negative whole to ``crop_size`` x ``crop_size`` (area
            interpolation) instead of cropping it, as the released training code does; default false.  A whole
            exposure sample carries its global brightness and texture statistics, a crop only a part of them.
        neg_sampling (str): ``per_folder`` (default): one negative from each ``dataroot_neg`` folder, so ``neg``
            has one entry per folder; ``pooled``: one negative drawn from all the folders' images together (the
            paper's single negative per triplet, and the released code's one folder of under- and over-exposed
            images), so ``neg`` has one entry.
        use_hflip (bool): random horizontal flip of input and label together (train), default true.
        darken (dict, optional): ``{gamma: [a, b], gain: [c, d]}``: input I -> clip(gain * I ** gamma) with gamma,
            gain uniform in the ranges; turns normal-light inputs into low-light ones.  Leave out for dark inputs.
        extra_inputs (list[dict], optional): more input folders, each ``{dataroot: F, darken: {...}}`` with its own
            ``darken`` (or none): real low-light images and darkened normal-light ones in one training set.  Their
            image files (directly in F, or a ``leftImg8bit`` tree) join ``dataroot_lq``'s; with labels or ground
            truths, every input needs one as for ``dataroot_lq``.
        phase (str): 'train' crops, flips and darkens at random; otherwise the whole input is returned, no flip, no
            crop (``darken`` still applies when given, with the per-item draw, so it is fixed per image), unless
            ``random_in_val: true``.  Positives/negatives are still drawn (per item, reproducibly).
        seed (int, optional): base seed of every random draw; default ``torch.initial_seed()`` when the dataset is
            built (BasicSR's ``manual_seed``, since ``set_random_seed`` runs before datasets are built).
        repeat (int): the dataset has ``repeat * len(inputs)`` items, each repetition with its own draws (use this
            instead of ``dataset_enlarge_ratio``, whose repeats of an index would get identical draws), default 1.
        check_images (bool): decode every file once at build time, default true: unreadable inputs, positives
            and negatives are skipped with a warning; an unreadable label, or one with ids out of range, is an
            error.
        io_backend (dict): BasicSR's; only ``type: disk`` (folders are listed on disk).

    Randomness: every random choice of item ``i`` comes from a NumPy generator seeded by ``(seed, epoch, i)``
    (``epoch`` from ``set_epoch``, default 0), with separate child streams for the input augmentation, the positive
    and each negative, so batches do not depend on the number of workers or on which worker loads an item.  Call
    ``set_epoch(epoch)`` before each epoch to draw new crops/samples per epoch.

    Returns a dict: ``lq`` (3xHxW float32 RGB in [0, 1]), ``label`` (HxW int64, only with labels), ``pos``
    (3xCxC), ``neg`` (list of 3xCxC: one per negative folder, or one with ``neg_sampling: pooled``), ``lq_path``,
    ``label_path`` (with labels), ``pos_path``, ``neg_path`` (list).
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.logger = get_root_logger()
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        if self.io_backend_opt.get('type', 'disk') != 'disk':
            raise ValueError(f'UnpairedContrastiveDataset lists its folders on disk; io_backend type '
                             f'{self.io_backend_opt.get("type")!r} is not supported (use type: disk).')
        self.io_backend_opt['type'] = 'disk'
        self.file_client = None

        self.train = opt.get('phase', 'train') == 'train'
        self.random_aug = self.train or bool(opt.get('random_in_val', False))
        self.crop_size = int(opt.get('crop_size', 384))
        if self.crop_size <= 0:
            raise ValueError(f'crop_size must be a positive integer, got {opt.get("crop_size")!r}.')
        self.use_hflip = bool(opt.get('use_hflip', True))
        self.darken = self._parse_darken(opt.get('darken'))
        self.repeat = int(opt.get('repeat', 1))
        if self.repeat < 1:
            raise ValueError(f'repeat must be >= 1, got {opt.get("repeat")!r}.')
        seed = opt.get('seed')
        self.seed = int(torch.initial_seed() if seed is None else seed)
        self.epoch = 0
        check = bool(opt.get('check_images', True))

        if 'dataroot_lq' not in opt:
            raise ValueError('Option dataroot_lq (the input folder) is required.')
        self.lq_folder = _require_folder(opt['dataroot_lq'], 'dataroot_lq')
        self.lq_paths = self._scan_inputs(self.lq_folder, check, 'dataroot_lq')
        self.lq_darken = [self.darken] * len(self.lq_paths)  # per input: the darkening of its folder
        self._add_extra_inputs(opt.get('extra_inputs'), check)

        self.num_classes, self.ignore_index = self.checked_label_ids(opt)
        if self.num_classes < 1:
            raise ValueError(f'Option num_classes must be a positive integer, got {opt.get("num_classes")!r}.')
        self.label_folder = opt.get('dataroot_label')
        self.label_paths = self.label_kinds = None
        if self.label_folder is not None:
            self.label_folder = _require_folder(self.label_folder, 'dataroot_label')
            self.label_paths, self.label_kinds = self._pair_labels(check)

        self.pos_paths = None
        if opt.get('dataroot_pos') is not None:
            self.pos_paths = self._scan_samples(opt['dataroot_pos'], 'dataroot_pos', check)
        self.resize_references = bool(opt.get('resize_references', False))
        self.neg_sampling = opt.get('neg_sampling', 'per_folder')
        if self.neg_sampling not in NEG_SAMPLING:
            raise ValueError(f'Option neg_sampling must be one of {", ".join(NEG_SAMPLING)}; got '
                             f'{self.neg_sampling!r}.')
        self.neg_paths = None
        neg = opt.get('dataroot_neg')
        if neg is not None:
            folders = [neg] if isinstance(neg, (str, os.PathLike)) else list(neg)
            if not folders:
                raise ValueError('Option dataroot_neg is an empty list; give one folder or leave it out.')
            self.neg_paths = [
                self._scan_samples(f, f'dataroot_neg[{i}]' if len(folders) > 1 else 'dataroot_neg', check)
                for i, f in enumerate(folders)
            ]
            if self.neg_sampling == 'pooled':
                self.neg_paths = [[path for paths in self.neg_paths for path in paths]]

    # ------------------------------------------------------------------ building
    @staticmethod
    def _parse_darken(darken, option='darken'):
        if not darken:
            return None
        if not isinstance(darken, dict) or set(darken) - {'gamma', 'gain'}:
            raise ValueError(f'Option {option} must be a dict with keys gamma and gain, e.g. '
                             f'{{gamma: [2.0, 3.5], gain: [0.5, 1.0]}}; got {darken!r}.')
        ranges = {}
        for key, default in (('gamma', (1.0, 1.0)), ('gain', (1.0, 1.0))):
            value = darken.get(key, default)
            low, high = (value, value) if isinstance(value, (int, float)) else tuple(value)
            if not 0 < low <= high:
                raise ValueError(f'Option {option}.{key} must be [low, high] with 0 < low <= high; got {value!r}.')
            ranges[key] = (float(low), float(high))
        return ranges

    def _add_extra_inputs(self, extra_inputs, check):
        if extra_inputs is None:
            return
        if not isinstance(extra_inputs, (list, tuple)):
            raise ValueError(f'Option extra_inputs must be a list of {{dataroot: FOLDER, darken: {{...}}}}; got '
                             f'{extra_inputs!r}.')
        for k, extra in enumerate(extra_inputs):
            option = f'extra_inputs[{k}]'
            if not isinstance(extra, dict) or 'dataroot' not in extra or set(extra) - {'dataroot', 'darken'}:
                raise ValueError(f'Option {option} must be a dict with the key dataroot and optionally darken, e.g. '
                                 f'{{dataroot: datasets/normal, darken: {{gamma: [2.0, 3.5], gain: [0.5, 1.0]}}}}; '
                                 f'got {extra!r}.')
            darken = self._parse_darken(extra.get('darken'), f'{option}.darken')
            folder = _require_folder(extra['dataroot'], f'{option}.dataroot')
            paths = self._scan_inputs(folder, check, f'{option}.dataroot')
            self.lq_paths += paths
            self.lq_darken += [darken] * len(paths)

    def _scan_inputs(self, folder, check, option):
        files = [p for p in walk_files(folder, recursive=True) if is_image_file(p)]
        cityscapes = [p for p in files if _stem(p).endswith(INPUT_SUFFIX)]
        if cityscapes:
            paths = cityscapes
        else:
            paths = [p for p in walk_files(folder, recursive=False) if is_image_file(p)]
        if not paths:
            raise ValueError(f'No image in {osp.abspath(folder)} (option {option}): neither '
                             f'*{INPUT_SUFFIX}.<ext> files in its tree nor image files directly in it.')
        if check:
            paths = screen_image_paths(paths, folder, option, self.logger)
        return paths

    @staticmethod
    def _input_key(path):
        stem = _stem(path)
        return stem[:-len(INPUT_SUFFIX)] if stem.endswith(INPUT_SUFFIX) else stem

    def _pair_labels(self, check):
        index = {}  # key -> {kind: path}
        for path in walk_files(self.label_folder, recursive=True):
            if not is_image_file(path):
                continue
            key_kind = _label_key(path)
            if key_kind is None:
                continue
            key, kind = key_kind
            previous = index.setdefault(key, {}).get(kind)
            if previous is not None:
                raise ValueError(f'Two label files for input {key!r} in {osp.abspath(self.label_folder)} '
                                 f'(option dataroot_label): {previous} and {path}.')
            index[key][kind] = path

        label_paths, kinds = [], []
        for lq_path in self.lq_paths:
            key = self._input_key(lq_path)
            found = index.get(key, {})
            kind = 'trainIds' if 'trainIds' in found else 'labelIds' if 'labelIds' in found else None
            if kind is None:
                raise FileNotFoundError(
                    f'No label for input {lq_path} in {osp.abspath(self.label_folder)} (option dataroot_label): '
                    f'expected {key}{TRAIN_IDS_SUFFIX}.png, {key}{LABEL_IDS_SUFFIX}.png or {key}.<image ext> '
                    'somewhere in that tree.')
            label_path = found[kind]
            check_companion(label_path, lq_path, 'label', 'dataroot_label',
                            read=(lambda path, kind=kind: self._read_label(path, kind)) if check else None)
            label_paths.append(label_path)
            kinds.append(kind)
        return label_paths, kinds

    def _scan_samples(self, folder, option, check):
        folder = _require_folder(folder, option)
        files = walk_files(folder, recursive=False)
        if check:
            return screen_image_paths(files, folder, option, self.logger)
        paths = [p for p in files if is_image_file(p)]
        if not paths:
            raise ValueError(f'No image in {osp.abspath(folder)} (option {option}); {len(files)} file(s) found.')
        return paths

    # ------------------------------------------------------------------ reading
    def _read_bytes(self, path, client_key):
        if self.file_client is None:
            opt = dict(self.io_backend_opt)
            self.file_client = FileClient(opt.pop('type'), **opt)
        return self.file_client.get(path, client_key)

    def _read_image(self, path, client_key):
        try:
            img = imfrombytes(self._read_bytes(path, client_key), flag='color', float32=True)
        except (OSError, cv2.error, AttributeError) as err:  # imfrombytes hits AttributeError on undecodable data
            raise OSError(f'cannot decode image {path} (option dataroot_{client_key}): {err}') from err
        return img  # HxWx3 BGR float32 in [0, 1]

    @staticmethod
    def checked_label_ids(opt):
        """``(num_classes, ignore_index)`` from the options: every label read is checked against them, so that a
        model can leave out checking them again on the device each step."""
        return int(opt.get('num_classes', 19)), int(opt.get('ignore_index', IGNORE_INDEX))

    def _read_label(self, path, kind):
        try:
            with Image.open(io.BytesIO(self._read_bytes(path, 'label'))) as img:
                label = np.array(img)
        except OSError as err:
            raise OSError(f'cannot decode label {path} (option dataroot_label): {err}') from err
        if label.ndim != 2:
            raise ValueError(f'Label {path} (option dataroot_label) has shape {label.shape}; a single-channel '
                             'map of class ids is expected.')
        label = labelids_to_trainids(label) if kind == 'labelIds' else label
        bad = ((label < 0) | (label >= self.num_classes)) & (label != self.ignore_index)
        if bad.any():
            ids = np.unique(label[bad])
            raise ValueError(f'Label {path} (option dataroot_label) has {int(bad.sum())} pixel(s) with ids '
                             f'{", ".join(map(str, ids[:10]))}{" ..." if len(ids) > 10 else ""} outside [0, '
                             f'{self.num_classes}) (option num_classes) other than the ignore index '
                             f'{self.ignore_index} (option ignore_index).')
        return label

    # ------------------------------------------------------------------ geometry
    def _upsize(self, img, label=None):
        """Resize so that both sides are >= crop_size (short side == crop_size), labels with nearest."""
        h, w = img.shape[:2]
        if min(h, w) >= self.crop_size:
            return img, label
        scale = self.crop_size / min(h, w)
        size = (max(self.crop_size, round(w * scale)), max(self.crop_size, round(h * scale)))  # (w, h) for cv2
        img = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR)
        if label is not None:
            label = cv2.resize(label, size, interpolation=cv2.INTER_NEAREST)
        return img, label

    def _random_crop(self, rng, img, label=None):
        img, label = self._upsize(img, label)
        h, w = img.shape[:2]
        top = int(rng.integers(0, h - self.crop_size + 1))
        left = int(rng.integers(0, w - self.crop_size + 1))
        img = img[top:top + self.crop_size, left:left + self.crop_size]
        if label is not None:
            label = label[top:top + self.crop_size, left:left + self.crop_size]
        return img, label

    def _sample(self, rng, paths, client_key):
        path = paths[int(rng.integers(len(paths)))]
        img = self._read_image(path, client_key)
        if self.resize_references:
            img = cv2.resize(img, (self.crop_size, self.crop_size), interpolation=cv2.INTER_AREA)
        else:
            img, _ = self._random_crop(rng, img)
        return img2tensor(np.ascontiguousarray(img), bgr2rgb=True, float32=True), path

    def _aligned_images(self, index, img):
        """``{key: HxWx3 BGR float32}`` images of input ``index`` that share its crop and flip but not its
        darkening; none here (:class:`PairedContrastiveDataset` adds ``gt``)."""
        return {}

    # ------------------------------------------------------------------ items
    def set_epoch(self, epoch):
        """Make the draws of the next epoch differ from the previous ones (all workers alike)."""
        self.epoch = int(epoch)

    def item_seed_sequence(self, index):
        return np.random.SeedSequence([self.seed % 2**64, self.epoch, index])

    def __getitem__(self, index):
        n_neg = len(self.neg_paths) if self.neg_paths is not None else 0
        aug_ss, pos_ss, *neg_ss = self.item_seed_sequence(index).spawn(2 + n_neg)
        rng = np.random.default_rng(aug_ss)
        i = index % len(self.lq_paths)

        lq_path = self.lq_paths[i]
        img = self._read_image(lq_path, 'lq')
        label = label_path = None
        if self.label_paths is not None:
            label_path = self.label_paths[i]
            label = self._read_label(label_path, self.label_kinds[i])
            if label.shape != img.shape[:2]:
                raise ValueError(f'Label {label_path} is {label.shape[1]}x{label.shape[0]} but its image {lq_path} '
                                 f'is {img.shape[1]}x{img.shape[0]} (option dataroot_label).')

        aligned = self._aligned_images(i, img)
        if self.random_aug:
            # images aligned with the input share its resize, crop and flip: they travel as extra channels
            img = np.concatenate([img, *aligned.values()], axis=2) if aligned else img
            img, label = self._random_crop(rng, img, label)
            if self.use_hflip and rng.random() < 0.5:
                img = img[:, ::-1]
                label = label[:, ::-1] if label is not None else None
            aligned = {key: img[..., 3 * (k + 1):3 * (k + 2)] for k, key in enumerate(aligned)}
            img = img[..., :3]
        darken = self.lq_darken[i]
        if darken is not None:
            gamma = rng.uniform(*darken['gamma'])
            gain = rng.uniform(*darken['gain'])
            img = np.clip(gain * np.power(np.clip(img, 0, 1), gamma), 0, 1).astype(np.float32)

        out = {'lq': img2tensor(np.ascontiguousarray(img), bgr2rgb=True, float32=True), 'lq_path': lq_path}
        for key, image in aligned.items():
            out[key] = img2tensor(np.ascontiguousarray(image), bgr2rgb=True, float32=True)
        if label is not None:
            out['label'] = torch.from_numpy(np.ascontiguousarray(label).astype(np.int64))
            out['label_path'] = label_path
        if self.pos_paths is not None:
            out['pos'], out['pos_path'] = self._sample(np.random.default_rng(pos_ss), self.pos_paths, 'pos')
        if self.neg_paths is not None:
            negs = [self._sample(np.random.default_rng(ss), paths, 'neg') for ss, paths in zip(neg_ss, self.neg_paths)]
            out['neg'] = [t for t, _ in negs]
            out['neg_path'] = [p for _, p in negs]
        return out

    def __len__(self):
        return len(self.lq_paths) * self.repeat
