"""What the evaluation protocols share: their error, the output folder, the report tables and the image conversions.

Images are read by OpenCV (BGR uint8) and scored as 8-bit images, as BasicSR's metrics expect; networks take RGB
float tensors in [0, 1].  The two conversions here are the only crossings between those, so every protocol rounds
an enhanced image to 8 bits the way BasicSR's ``tensor2img`` does.
"""
import csv
import datetime
import os
import os.path as osp

import cv2
import numpy as np
import torch

from sclle_basicsr.utils.assets import REPO_ROOT
from sclle_basicsr.utils.atomic_files import atomic_open, write_atomic


class EvaluationError(ValueError):
    """Bad inputs to an evaluation protocol (the message names the file, folder or option)."""


def make_output_dir(out, overwrite=False):
    """Create ``out``; an existing non-empty folder is an error unless ``overwrite``, an existing file always."""
    if osp.exists(out) and not osp.isdir(out):
        raise EvaluationError(f'--out {out} is an existing file; --out names the output folder')
    if osp.isdir(out) and os.listdir(out) and not overwrite:
        raise EvaluationError(f'output folder {out} exists and is not empty (pass --overwrite or another --out)')
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise EvaluationError(f'cannot create the output folder --out {out}: {err}') from err
    return osp.abspath(out)


def default_out(prefix):
    """``results/<prefix>_<timestamp>`` under the repository root: one new folder per run, never overwritten."""
    return osp.join(REPO_ROOT, 'results', f'{prefix}_{datetime.datetime.now():%Y%m%d_%H%M%S}')


def write_table(rows, columns, md_path, csv_path, title, notes=(), fmt=None):
    """Write ``rows`` (dicts) as a Markdown table (with title and notes) and a CSV file; returns the Markdown.

    Missing values (``None``, NaN) are ``-`` in Markdown and empty in the CSV; ``fmt`` maps a column to its float
    format (default ``.4f``).
    """
    fmt = fmt or {}

    def cell(col, value):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return '-'
        if isinstance(value, float):
            return format(value, fmt.get(col, '.4f'))
        return str(value)

    lines = [f'# {title}', '', '| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(cell(c, r.get(c)) for c in columns) + ' |' for r in rows]
    if notes:
        lines += [''] + [f'- {n}' for n in notes]
    write_atomic(md_path, '\n'.join(lines) + '\n')
    with atomic_open(csv_path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction='ignore')
        writer.writeheader()
        for r in rows:
            writer.writerow({c: ('' if r.get(c) is None else r.get(c)) for c in columns})
    return '\n'.join(lines)


def read_color(path):
    """``path`` as OpenCV reads it (BGR uint8 ``HxWx3``); an unreadable file is an error naming it."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise EvaluationError(f'cannot read image {path}')
    return img


def bgr_uint8_to_tensor(img):
    """OpenCV BGR uint8 ``HxWx3`` -> ``(1, 3, H, W)`` RGB float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1])).permute(2, 0, 1)[None].float().div_(255.0)


def tensor_to_uint8_bgr(x):
    """``(1, 3, H, W)`` RGB [0, 1] -> BGR uint8, rounded as BasicSR's ``tensor2img``."""
    arr = x[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()[:, :, ::-1]
    return np.ascontiguousarray((arr * 255.0).round().astype(np.uint8))
