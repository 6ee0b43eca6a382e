"""The work on each file of a run: read, enhance, encode, write whole (an image at once, a video streamed frame by
frame); a failing file is reported and the run goes on with the next."""
import os
import os.path as osp
import sys

import numpy as np

from sclle_basicsr.enhance.image_reading import read_image
from sclle_basicsr.enhance.image_writing import encode_image
from sclle_basicsr.enhance.video import enhance_video
from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.image_files import is_video_file


def enhance_pixels(enhancer, pixels, model_path):
    """``pixels`` (uint8/uint16; gray, gray+alpha, RGB, RGBA) enhanced, same dtype and layout, alpha untouched.

    The network runs on floats in [0, 1] and its output is checked before it is quantised: NaN or Inf (from
    broken weights) would otherwise become black or random pixels in a file that looks fine.
    """
    scale = float(np.iinfo(pixels.dtype).max)
    has_alpha = pixels.ndim == 3 and pixels.shape[2] in (2, 4)
    color = pixels[:, :, :-1] if has_alpha else pixels
    if color.ndim == 3 and color.shape[2] == 1:
        color = color[:, :, 0]
    out = enhancer.enhance(color.astype(np.float32) / np.float32(scale))
    finite = np.isfinite(out)
    if not finite.all():
        raise FloatingPointError(f'the model gave {out.size - int(finite.sum())} NaN or infinite value(s); nothing '
                                 f'written (are the weights in {model_path} finite?)')
    out = np.rint(np.clip(out, 0, 1) * scale).astype(pixels.dtype)
    return np.dstack([out, pixels[:, :, -1:]]) if has_alpha else out


def enhance_all(enhancer, bar, images, targets, counts, skip_existing=False, model_path=None, overwrite=False,
                video_options=None, frame_progress=None):
    """Enhance ``images`` (iterated through the progress ``bar``; videos among them too) into their ``targets``
    (``(path, format)``), counting in ``counts``; returns ``[(path, error)]``.

    ``skip_existing`` keeps outputs that exist; ``overwrite`` replaces them; otherwise an output that appears while
    the run goes on (another run writing into the same folder) is never replaced: it is a failure naming the file.
    An output is published only if its name is still free at that moment (see ``write_atomic(replace=False)``),
    so of two runs into one folder exactly one writes each file.  ``model_path`` is named when the model's output
    is not finite.  Videos take ``video_options`` (:class:`~sclle_basicsr.enhance.video.VideoOptions`) and
    ``frame_progress(total)``, a bar counting their frames.
    """
    inputs = {osp.realpath(p) for p in images}
    claimed, failures = {}, []
    for path, (out_path, fmt) in zip(bar, targets):
        try:
            real_out = osp.realpath(out_path)
            if real_out in inputs:
                raise OSError(f'refusing to write {out_path}: it is an input file (use another -o or --suffix)')
            if real_out in claimed:
                raise OSError(f'output {out_path} already written for {claimed[real_out]}')
            claimed[real_out] = path
            if not overwrite and osp.lexists(out_path):
                if skip_existing:
                    counts['kept'] += 1
                    continue
                raise FileExistsError(f'output {out_path} was created by another process during this run; not '
                                      'replaced (pass --overwrite to replace it, --skip_existing to keep it)')
            try:
                if is_video_file(path):
                    notes = _write_video(enhancer, path, out_path, fmt, counts, overwrite, video_options,
                                         frame_progress)
                else:
                    notes = _write_image(enhancer, path, out_path, fmt, counts, overwrite, model_path)
            except FileExistsError:
                if skip_existing:  # written by another run meanwhile: kept, like any existing output
                    counts['kept'] += 1
                    continue
                raise FileExistsError(f'output {out_path} was created by another process during this run; not '
                                      'replaced (pass --overwrite to replace it, --skip_existing to keep it)') from None
            counts['written'] += 1
            for note in notes:
                _log(bar, note)
        except Exception as e:  # one bad file must not stop the batch
            failures.append((path, str(e)))
            counts['failed'] += 1
            _log(bar, f'FAILED {path}: {e}')
    return failures


def _write_image(enhancer, path, out_path, fmt, counts, overwrite, model_path):
    """Read, enhance, encode and publish one image; returns its notes."""
    img = read_image(path)
    out = enhance_pixels(enhancer, img.pixels, model_path)
    data, notes = encode_image(out, fmt, img.icc)
    os.makedirs(osp.dirname(out_path), exist_ok=True)
    write_atomic(out_path, data, replace=overwrite)
    counts['megapixels'] += out.shape[0] * out.shape[1] / 1e6
    return img.notes + [f'{out_path}: {n}' for n in notes]


def _write_video(enhancer, path, out_path, muxer, counts, overwrite, options, progress):
    """Enhance one video into ``out_path`` (streamed, published whole); returns its notes."""
    os.makedirs(osp.dirname(out_path), exist_ok=True)
    frames, notes, megapixels = enhance_video(enhancer, path, out_path, muxer, options, replace=overwrite,
                                              progress=progress)
    counts['videos'] = counts.get('videos', 0) + 1
    counts['frames'] = counts.get('frames', 0) + frames
    counts['megapixels'] += megapixels
    return [f'{out_path}: {n}' for n in notes]


def _log(bar, msg):
    if hasattr(bar, 'write'):
        bar.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr)
