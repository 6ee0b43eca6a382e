"""Captioned side-by-side pictures: the demo's contact sheet, ``scripts/compare_sheet.py`` and the ablation study's
comparison sheet draw their rows with these helpers, so every sheet looks the same."""
import os.path as osp
import re

import cv2
import numpy as np

from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.image_files import list_images


def labelled_row(tiles, height=200):
    """[(caption, BGR image), ...] -> one strip, each image scaled to ``height`` with its caption drawn on it."""
    row = []
    for caption, img in tiles:
        img = cv2.resize(img, (round(img.shape[1] * height / img.shape[0]), height))
        cv2.putText(img, caption, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2)
        row.append(img)
    return np.hstack(row)


def stack_rows(rows):
    """Rows of different widths, stacked; shorter rows padded with black on the right."""
    width = max(r.shape[1] for r in rows)
    return np.vstack([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows])


def enhancer_sheet(images, methods, height=240):
    """One row per image path: input | each ``(name, source)`` of ``methods``, as a BGR uint8 picture.

    A source is what the evaluation protocols compare (:mod:`sclle_basicsr.evaluation.methods`): a DCE-Net
    checkpoint, run in 512-pixel tiles (the whole-image result with bounded memory: whole 4 MP images, seven
    enhancers took 15 GB), or the :class:`~sclle_basicsr.evaluation.methods.NetworkConfig` of any BasicSR network,
    run on the whole image; an output of another size is scaled to the row's height like every tile.
    Raises ``ValueError`` naming an image that cannot be read.
    """
    from sclle_basicsr import evaluation as ev
    networks = [(name, source, ev.load_method(source)) for name, source in methods]
    rows = []
    for path in images:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f'cannot read image {path}')
        x = ev.bgr_uint8_to_tensor(bgr)
        tiles = [(f'input {osp.basename(path)}', bgr)]
        for name, source, net in networks:
            y = ev.enhance(net, x, f'{ev.describe(source)} on {path}', **ev.inference_options(source, tile=512))
            tiles.append((name, ev.tensor_to_uint8_bgr(y)))
        rows.append(labelled_row(tiles, height))
    return stack_rows(rows)


def validation_sheet(val_dir, visualization_dir, height=200):
    """One row per image of ``val_dir``: the input, then its enhanced copy from each validation of a BasicSR run.

    ``visualization_dir`` is the run's ``visualization/`` folder, where BasicSR saves ``<name>/<name>_<iter>.png``.
    """
    rows = []
    for src in list_images(val_dir):
        name = osp.splitext(osp.basename(src))[0]
        saved = re.compile(re.escape(name) + r'_(\d+)\.png')
        matches = [(saved.fullmatch(osp.basename(p)), p) for p in list_images(osp.join(visualization_dir, name))]
        results = sorted((int(m.group(1)), p) for m, p in matches if m)
        tiles = [('input', cv2.imread(src))] + [(f'iter {it}', cv2.imread(p)) for it, p in results]
        rows.append(labelled_row(tiles, height))
    return stack_rows(rows)


def write_sheet(path, sheet):
    """Write the picture ``sheet`` (BGR) to ``path`` whole, in the format its extension names (PNG without one).

    Raises ``ValueError`` when OpenCV cannot encode that format.
    """
    try:
        ok, encoded = cv2.imencode(osp.splitext(path)[1] or '.png', sheet)
    except cv2.error:  # an extension OpenCV has no writer for
        ok = False
    if not ok:
        raise ValueError(f'cannot encode {path}')
    write_atomic(path, encoded.tobytes())
