"""Split a multi-exposure collection (SICE style) into ``positive`` / ``under`` / ``over`` folders by brightness.

The brightness of an image is its mean grey level in [0, 1]: OpenCV's BT.601 grey conversion
(0.299 R + 0.587 G + 0.114 B) of the 8-bit image, averaged and divided by 255.  With the default bands
(under < 0.25, positive in [0.35, 0.65], over > 0.75) the 400 images of ``sice_part1_subset`` give
146 / 116 / 65; images between the bands are left out on purpose (neither clearly normal nor clearly wrong).

``split_exposures`` does the work and is what ``scripts/split_exposures.py`` calls.  Files are linked
(symbolic links to the absolute source path) or copied whole (file contents, not timestamps or permissions), never
overwriting anything already in the output folders.
"""
import logging
import os
import os.path as osp
import shutil
from dataclasses import dataclass, field

import cv2
import numpy as np

from sclle_basicsr.utils.atomic_files import atomic_open, remove_stale_temporaries
from sclle_basicsr.utils.image_files import list_images

UNDER, POSITIVE, OVER = 'under', 'positive', 'over'
CATEGORIES = (POSITIVE, UNDER, OVER)

DEFAULT_UNDER_MAX = 0.25
DEFAULT_POSITIVE_RANGE = (0.35, 0.65)
DEFAULT_OVER_MIN = 0.75


@dataclass
class ExposureSplit:
    """What ``split_exposures`` found and did.

    ``assigned[c]``: source paths classified as category ``c``; ``levels``: mean grey level of every readable image;
    ``between``: readable images in no band; ``unreadable``: files that could not be decoded (skipped, logged);
    ``written[c]``: links/copies made; ``existing[c]``: destinations already present (left untouched).
    """
    assigned: dict = field(default_factory=lambda: {c: [] for c in CATEGORIES})
    levels: dict = field(default_factory=dict)
    between: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)
    written: dict = field(default_factory=lambda: {c: 0 for c in CATEGORIES})
    existing: dict = field(default_factory=lambda: {c: 0 for c in CATEGORIES})

    @property
    def counts(self):
        return {c: len(v) for c, v in self.assigned.items()}

    def summary(self):
        lines = [f'{c}: {len(self.assigned[c])} ({self.written[c]} written, {self.existing[c]} already present)'
                 for c in CATEGORIES]
        lines.append(f'between bands (not used): {len(self.between)}')
        lines.append(f'unreadable (skipped): {len(self.unreadable)}')
        return '\n'.join(lines)


def mean_grey_level(path):
    """Mean grey level of the image at ``path`` in [0, 1]; ``OSError`` naming the file when it cannot be decoded."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise OSError(f'cannot read image {path}: {err}') from err
    img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if img is None:
        raise OSError(f'cannot decode image {path}')
    return float(img.mean(dtype=np.float64)) / 255.0


def check_thresholds(under_max, positive_range, over_min):
    low, high = positive_range
    if not 0.0 <= under_max <= low <= high <= over_min <= 1.0:
        raise ValueError('Exposure thresholds must satisfy 0 <= under <= positive low <= positive high <= over <= 1; '
                         f'got under={under_max}, positive=({low}, {high}), over={over_min}.')


def classify_level(level, under_max=DEFAULT_UNDER_MAX, positive_range=DEFAULT_POSITIVE_RANGE,
                   over_min=DEFAULT_OVER_MIN):
    """'under' if level < under_max, 'positive' if low <= level <= high, 'over' if level > over_min, else None."""
    if level < under_max:
        return UNDER
    if positive_range[0] <= level <= positive_range[1]:
        return POSITIVE
    if level > over_min:
        return OVER
    return None


def split_exposures(input_dir, output_dir, under_max=DEFAULT_UNDER_MAX, positive_range=DEFAULT_POSITIVE_RANGE,
                    over_min=DEFAULT_OVER_MIN, copy=False, recursive=False, dry_run=False, logger=None):
    """Classify every image of ``input_dir`` by mean grey level and link (or copy) it into
    ``output_dir/{positive,under,over}``.

    Args:
        input_dir (str): folder of images (a flat folder; ``recursive=True`` also walks sub-folders, and the
            destination name is then the relative path with separators replaced by ``_``).
        output_dir (str): where the three folders are made (created when missing).
        under_max, positive_range, over_min (float): the bands on the mean grey level in [0, 1].
        copy (bool): copy the files instead of making symbolic links.
        dry_run (bool): classify only; write nothing.
        logger: a ``logging.Logger`` for skipped files (default: this module's logger).

    Returns:
        ExposureSplit.

    Raises:
        FileNotFoundError: ``input_dir`` does not exist or is not a folder.
        ValueError: no image file in ``input_dir``, none of them readable, or thresholds out of order.
    """
    logger = logger or logging.getLogger(__name__)
    positive_range = tuple(float(v) for v in positive_range)
    check_thresholds(under_max, positive_range, over_min)
    if not osp.isdir(input_dir):
        raise FileNotFoundError(f'Input folder {osp.abspath(input_dir)} does not exist or is not a folder.')
    exclude = {osp.abspath(osp.join(output_dir, c)) for c in CATEGORIES}
    paths = list_images(input_dir, recursive, exclude)
    if not paths:
        raise ValueError(f'No image file in {osp.abspath(input_dir)} '
                         f'({"recursively" if recursive else "not recursive; try --recursive"}).')

    result = ExposureSplit()
    for path in paths:
        try:
            level = mean_grey_level(path)
        except OSError as err:
            logger.warning(f'Skipping {err}')
            result.unreadable.append(path)
            continue
        result.levels[path] = level
        category = classify_level(level, under_max, positive_range, over_min)
        if category is None:
            result.between.append(path)
        else:
            result.assigned[category].append(path)
    if not result.levels:
        raise ValueError(f'None of the {len(paths)} image file(s) in {osp.abspath(input_dir)} could be decoded.')
    if dry_run:
        return result

    for category, sources in result.assigned.items():
        folder = osp.join(output_dir, category)
        os.makedirs(folder, exist_ok=True)
        for partial in remove_stale_temporaries(folder):
            logger.info(f'Removed {partial}, a partial copy left by a run that was stopped.')
        for src in sources:
            name = osp.relpath(src, input_dir).replace(os.sep, '_') if recursive else osp.basename(src)
            dst = osp.join(folder, name)
            if osp.lexists(dst):  # lexists: a dangling link is still something we must not replace
                result.existing[category] += 1
                continue
            if copy:  # whole or not at all: a stopped copy must not pass for an existing file next time
                with open(src, 'rb') as fin, atomic_open(dst, 'wb') as fout:
                    shutil.copyfileobj(fin, fout)
            else:
                os.symlink(osp.abspath(src), dst)
            result.written[category] += 1
    if any(result.existing.values()):
        logger.warning(f'{sum(result.existing.values())} destination file(s) already existed in {output_dir} and '
                       'were left untouched.')
    return result
