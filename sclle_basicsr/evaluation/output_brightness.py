"""How bright enhancers leave the five unpaired sets: the mean grey level of each output, its 95th percentile and the
share of pixels above 0.9 (highlights pushed toward white), per set.

NIQE says an output is less natural, not why; these statistics show whether an enhancer lifts the whole image, its
shadows only, or its highlights too.  Grey level: the mean of R, G and B of the output rounded to 8 bits (as every
protocol here scores it), in [0, 1].
"""
import os.path as osp

import numpy as np

from sclle_basicsr.evaluation.common import EvaluationError, bgr_uint8_to_tensor, read_color, write_table
from sclle_basicsr.evaluation.methods import describe, enhance, inference_options, load_method
from sclle_basicsr.evaluation.table1_niqe import DCENET_TILING
from sclle_basicsr.utils.image_files import list_images

HIGHLIGHT = 0.9
STATISTICS = ('mean', 'p95', 'highlights')


def grey_statistics(rgb):
    """``{'mean', 'p95', 'highlights'}`` of an ``(N, 3, H, W)`` RGB image in [0, 1] (``N`` = 1)."""
    grey = (rgb[0] * 255.0).round().mean(dim=0).div_(255.0).flatten().numpy()
    return {'mean': float(grey.mean()), 'p95': float(np.percentile(grey, 95)),
            'highlights': float((grey > HIGHLIGHT).mean())}


def set_brightness(net, source, folder):
    """The statistics of :func:`grey_statistics` averaged over the images of ``folder`` enhanced by ``net``."""
    images = list_images(folder)
    if not images:
        raise EvaluationError(f'no images in {folder}')
    options = inference_options(source, tile=DCENET_TILING['tile'])
    rows = [grey_statistics(enhance(net, bgr_uint8_to_tensor(read_color(path)), f'{describe(source)} on {path}',
                                    **options)) for path in images]
    return {key: float(np.mean([r[key] for r in rows])) for key in STATISTICS}


def run_output_brightness(methods, out, sets, dataroot, log=print):
    """``(rows, markdown)``: one row per method with ``<set>_<statistic>`` and ``average_<statistic>``; writes
    ``<out>/output_brightness.md`` and ``.csv``."""
    folders = {s: osp.join(dataroot, s) for s in sets}
    rows = []
    for name, source in methods:
        net = load_method(source)
        row = {'method': name}
        for s, folder in folders.items():
            for key, value in set_brightness(net, source, folder).items():
                row[f'{s}_{key}'] = value
            log(f'[brightness] {name} {s}: mean {row[f"{s}_mean"]:.3f}, p95 {row[f"{s}_p95"]:.3f}, '
                f'above {HIGHLIGHT}: {row[f"{s}_highlights"]:.3f}')
        for key in STATISTICS:
            row[f'average_{key}'] = float(np.mean([row[f'{s}_{key}'] for s in sets]))
        rows.append(row)
    columns = ['method'] + [f'{s}_{key}' for s in list(sets) + ['average'] for key in STATISTICS]
    md = write_table(rows, columns, osp.join(out, 'output_brightness.md'), osp.join(out, 'output_brightness.csv'),
                     'Output brightness per set', fmt={c: '.3f' for c in columns},
                     notes=(f'mean / p95: mean and 95th percentile of the grey level (mean of R, G, B in [0, 1]); '
                            f'highlights: share of pixels above {HIGHLIGHT}; each averaged over the images of the set',
                            'identity: the input images'))
    return rows, md
