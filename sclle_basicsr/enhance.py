"""``sclle-enhance``: enhance image files or folders with a DCENet checkpoint (``python -m sclle_basicsr.enhance``).

Real files are handled as they come: the EXIF orientation is applied; 16-bit PNG/TIFF stay 16-bit; an alpha
channel is passed through untouched; grayscale stays grayscale (enhanced as replicated RGB, converted back with
the BT.601 luma weights); the ICC profile is carried over; files that are not images are skipped and listed; an
image that cannot be decoded is reported and the rest processed (exit status 1). Inputs are never overwritten;
existing outputs only with ``--overwrite`` (``--skip_existing`` keeps them). Each output is written atomically
(:mod:`sclle_basicsr.atomic_files`); temporary files of a killed run are removed by the next run. SIGINT and
SIGTERM abandon the image in progress, print the summary and exit.

Exit status: 0 all images written, 1 some image failed, 2 usage error (bad arguments, no model, no input, existing
outputs), 130 / 143 stopped by SIGINT / SIGTERM.
"""
import argparse
import contextlib
import io
import os
import os.path as osp
import signal
import struct
import sys
import threading
import time
import zlib

import numpy as np

from sclle_basicsr import _compat  # noqa: F401  (before torch-dependent imports of basicsr)
from sclle_basicsr.assets import ENV_VAR, asset_path
from sclle_basicsr.atomic_files import remove_stale_temporaries, write_atomic
from sclle_basicsr.image_files import IMAGE_EXTENSIONS, is_image_file, walk_files
from sclle_basicsr.inference import BACKENDS, PRECISIONS, CheckpointError, Enhancer, InvalidImageError, check_pixels

MIN_TILE = 64  # below this, overlap and per-tile overhead dominate (see smallest_useful_tile)
OUTPUT_EXTS = {'png': '.png', 'jpg': '.jpg', 'tif': '.tif'}
_AUTO_KEEP = {'.png': 'png', '.jpg': 'jpg', '.jpeg': 'jpg', '.tif': 'tif', '.tiff': 'tif'}
GRAY_MODES = ('1', 'L', 'LA', 'La', 'I', 'I;16', 'I;16B', 'I;16L', 'I;16N', 'F')


class ImageReadError(OSError):
    pass


class DecodedImage:
    """Pixels (H x W, H x W x 3 or H x W x 4; uint8 or uint16, RGB order) plus what must survive the round trip."""

    def __init__(self, pixels, icc=None, notes=()):
        self.pixels = pixels
        self.icc = icc
        self.notes = list(notes)

    @property
    def has_alpha(self):
        return self.pixels.ndim == 3 and self.pixels.shape[2] == 4

    @property
    def is_gray(self):
        return self.pixels.ndim == 2


# ----------------------------------------------------------------------------------------------------------------
# Reading


def _orient(arr, orientation):
    """Apply an EXIF orientation (1-8) to an H x W (x C) array, as PIL's ``ImageOps.exif_transpose`` does."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = arr.swapaxes(0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = arr.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


def _tiff_icc(path):
    try:
        import tifffile
        with tifffile.TiffFile(path) as tif:
            tag = tif.pages[0].tags.get(34675)
            return bytes(tag.value) if tag is not None else None
    except Exception:  # noqa: BLE001  (metadata only)
        return None


def read_image(path):
    """Decode ``path`` into a :class:`DecodedImage`; raise :class:`ImageReadError` saying why not.

    OpenCV gives the pixels at full bit depth (PIL reads 16-bit colour PNG as 8-bit); PIL gives the metadata
    (mode, ICC profile, EXIF orientation) and catches truncated files, which OpenCV decodes as grey.
    """
    import cv2
    from PIL import Image, UnidentifiedImageError

    notes = []
    mode, icc, orientation, pil_error = None, None, 1, None
    try:
        with Image.open(path) as img:
            mode = img.mode
            icc = img.info.get('icc_profile')
            try:
                orientation = int(img.getexif().get(0x0112, 1) or 1)
            except Exception:  # noqa: BLE001  (a broken EXIF block: no orientation)
                orientation = 1
            img.load()
    except UnidentifiedImageError as err:
        pil_error = err
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        msg = str(err).lower()
        if 'truncat' in msg or 'broken' in msg or 'decompression bomb' in msg or not mode:
            raise ImageReadError(f'cannot decode image {path}: {err}') from err
        pil_error = err  # e.g. a mode PIL cannot unpack (16-bit colour TIFF): OpenCV may still read it
    try:
        data = np.fromfile(path, dtype=np.uint8)
        arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except (OSError, cv2.error) as err:
        raise ImageReadError(f'cannot read image {path}: {err}') from err
    if arr is None:
        raise ImageReadError(f'cannot decode image {path}' + (f': {pil_error}' if pil_error else ''))
    if arr.dtype not in (np.uint8, np.uint16):
        if arr.dtype.kind != 'f':
            raise ImageReadError(f'cannot enhance {path}: unsupported pixel type {arr.dtype}')
        check_float_pixels(arr, path)
        notes.append(f'{path}: float pixels written as 16-bit')
        arr = np.rint(np.clip(arr, 0, 1) * 65535).astype(np.uint16)
    if arr.ndim == 3:
        if arr.shape[2] == 1:
            arr = arr[:, :, 0]
        elif arr.shape[2] == 3:
            arr = arr[:, :, ::-1]
        elif arr.shape[2] == 4:
            arr = arr[:, :, [2, 1, 0, 3]]
        else:
            raise ImageReadError(f'cannot enhance {path}: {arr.shape[2]} channels')
    if mode in GRAY_MODES and arr.ndim == 3:  # OpenCV expands gray+alpha to BGRA
        arr = np.dstack([arr[:, :, 0], arr[:, :, 3]]) if arr.shape[2] == 4 else arr[:, :, 0]
    if icc is None and path.lower().endswith(('.tif', '.tiff')):
        icc = _tiff_icc(path)
    if orientation != 1:
        arr = _orient(arr, orientation)
        notes.append(f'{path}: EXIF orientation {orientation} applied')
    return DecodedImage(np.ascontiguousarray(arr), icc=icc, notes=notes)


def check_float_pixels(arr, path):
    """Refuse float pixels the network cannot take (:func:`~sclle_basicsr.inference.check_pixels`), naming the file.

    Clipping them would turn an HDR or mis-scaled image into a silently wrong result.
    """
    try:
        check_pixels(arr)
    except InvalidImageError as err:
        raise ImageReadError(f'cannot enhance {path}: {err}') from err


# ----------------------------------------------------------------------------------------------------------------
# Writing


def _png_with_icc(png_bytes, icc):
    """Insert an iCCP chunk after IHDR (OpenCV cannot write one)."""
    data = b'ICC Profile\x00\x00' + zlib.compress(icc)
    chunk = struct.pack('>I', len(data)) + b'iCCP' + data + struct.pack('>I', zlib.crc32(b'iCCP' + data) & 0xffffffff)
    ihdr_end = 8 + 4 + 4 + 13 + 4
    return png_bytes[:ihdr_end] + chunk + png_bytes[ihdr_end:]


def encode_image(pixels, fmt, icc=None):
    """Bytes of ``pixels`` (RGB order; gray, gray+alpha, RGB, RGBA; uint8/uint16) in ``fmt`` (png, jpg, tif).

    Returns ``(bytes, notes)``; notes say what a format could not keep (JPEG: 8 bits, no alpha).
    """
    import cv2

    notes = []
    gray_alpha = pixels.ndim == 3 and pixels.shape[2] == 2
    if fmt == 'png':
        if pixels.ndim == 2:
            bgr = pixels
        elif gray_alpha:  # OpenCV has no gray+alpha PNG: PIL writes LA for 8-bit
            if pixels.dtype == np.uint8:
                return _pil_bytes(pixels, 'LA', 'PNG', icc), notes
            bgr = np.dstack([pixels[:, :, 0]] * 3 + [pixels[:, :, 1]])
            notes.append('16-bit gray+alpha written as RGBA (gray replicated)')
            bgr = bgr[:, :, [2, 1, 0, 3]]
        elif pixels.shape[2] == 3:
            bgr = pixels[:, :, ::-1]
        else:
            bgr = pixels[:, :, [2, 1, 0, 3]]
        ok, buf = cv2.imencode('.png', np.ascontiguousarray(bgr))
        if not ok:
            raise OSError('PNG encoding failed')
        out = buf.tobytes()
        return (_png_with_icc(out, icc) if icc else out), notes
    if fmt == 'jpg':
        if pixels.dtype == np.uint16:
            pixels = np.rint(pixels / 257.0).astype(np.uint8)
            notes.append('JPEG holds 8 bits: 16-bit output reduced to 8-bit')
        if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
            pixels = pixels[:, :, 0] if pixels.shape[2] == 2 else pixels[:, :, :3]
            notes.append('JPEG has no alpha: alpha channel dropped')
        return _pil_bytes(pixels, 'L' if pixels.ndim == 2 else 'RGB', 'JPEG', icc, quality=95), notes
    if fmt == 'tif':
        try:
            import tifffile
        except ImportError:
            tifffile = None
        if tifffile is not None:
            bio = io.BytesIO()
            kwargs = {}
            if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
                kwargs['extrasamples'] = ['unassalpha']
            photometric = 'minisblack' if pixels.ndim == 2 or gray_alpha else 'rgb'
            tifffile.imwrite(bio, pixels, photometric=photometric, iccprofile=icc, compression='zlib',
                             **kwargs)
            return bio.getvalue(), notes
        ok, buf = cv2.imencode('.tif', np.ascontiguousarray(pixels[..., ::-1] if pixels.ndim == 3 else pixels))
        if icc:
            notes.append('tifffile not installed: ICC profile not written')
        return buf.tobytes(), notes
    raise ValueError(f'unknown output format {fmt}')


def _pil_bytes(pixels, mode, fmt, icc, **kwargs):
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(pixels))  # uint8 HxW / HxWx2 / HxWx3 -> L / LA / RGB
    assert img.mode == mode, (img.mode, mode)
    bio = io.BytesIO()
    if icc:
        kwargs['icc_profile'] = icc
    img.save(bio, format=fmt, **kwargs)
    return bio.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# Driver


def collect_inputs(input_path, recursive):
    """``(root, images, skipped)``: image paths under ``input_path`` (sorted) and the non-image files."""
    if osp.isfile(input_path):
        if not is_image_file(input_path):
            raise ValueError(f'{input_path} is not an image file (extensions: {", ".join(IMAGE_EXTENSIONS)})')
        return osp.dirname(osp.abspath(input_path)), [osp.abspath(input_path)], []
    if not osp.isdir(input_path):
        raise ValueError(f'input {input_path} not found')
    root = osp.abspath(input_path)
    images, skipped = [], []
    for path in walk_files(root, recursive):
        (images if is_image_file(path) else skipped).append(path)
    return root, images, skipped


def output_path_for(path, root, output_dir, suffix, ext):
    rel = osp.relpath(path, root)
    stem, in_ext = osp.splitext(rel)
    fmt = _AUTO_KEEP.get(in_ext.lower(), 'png') if ext == 'auto' else ext
    out_ext = in_ext if ext == 'auto' and in_ext.lower() in _AUTO_KEEP else OUTPUT_EXTS[fmt]
    return osp.join(output_dir, stem + suffix + out_ext), fmt


def default_model_hint():
    return (f'no --model_path given. The released weights are at {asset_path("weights", "sclle_official.pth")} '
            f'(SCL-LLE) and {asset_path("weights", "zerodce_official.pth")} (Zero-DCE); the assets folder is '
            f'${ENV_VAR}, else ../shared/assets next to the repository. A BasicSR checkpoint '
            f'(experiments/<name>/models/net_g_*.pth) works too.')


def smallest_useful_tile(tile_pad):
    """The smallest ``--tile`` worth running: each tile is computed with ``tile_pad`` pixels of overlap on every
    side, so smaller tiles spend most of their time on the overlap (and the per-tile overhead) instead of the image.
    """
    return max(MIN_TILE, 2 * tile_pad + 1)


class Interrupted(BaseException):
    """SIGINT or SIGTERM during a run (a ``BaseException``: the per-image error handling must not swallow it)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals(signums=(signal.SIGINT, signal.SIGTERM)):
    """Raise :class:`Interrupted` on the first of ``signums`` and ignore repeats while the run winds down.

    The exception aborts the image in progress wherever it is (its temporary file is removed by
    :func:`~sclle_basicsr.atomic_files.atomic_open`); the previous handlers are restored on exit.  Outside the main
    thread (where Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        for s in signums:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def build_parser():
    p = argparse.ArgumentParser(prog='sclle-enhance', description='Enhance low-light images with SCL-LLE / Zero-DCE.')
    p.add_argument('-i', '--input', required=True, help='image file or folder')
    p.add_argument('-o', '--output', required=True, help='output folder (created)')
    p.add_argument('--model_path', default=None, help='DCENet weights (BasicSR checkpoint or bare state dict)')
    p.add_argument('--recursive', action='store_true', help='walk sub-folders (the tree is mirrored in -o)')
    existing = p.add_mutually_exclusive_group()
    existing.add_argument('--overwrite', action='store_true', help='replace outputs that already exist')
    existing.add_argument('--skip_existing', action='store_true',
                          help='keep outputs that already exist and enhance only the others (resume a run)')
    p.add_argument('--tile', type=int, default=0,
                   help=f'tile size in pixels, 0 = whole image (default); at least {MIN_TILE} and > 2 * tile_pad')
    p.add_argument('--tile_pad', type=int, default=8, help='tile overlap; >= 7 gives the untiled result')
    p.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    p.add_argument('--precision', default='fp32', choices=PRECISIONS)
    p.add_argument('--backend', default='auto', choices=BACKENDS,
                   help='auto: the fastest installed for the device and precision (see the README)')
    p.add_argument('--suffix', default='', help='appended to each output file name, e.g. _sclle')
    p.add_argument('--ext', default='auto', choices=('auto', 'png', 'jpg', 'tif'),
                   help='output format; auto keeps png/jpg/tif and writes png for the rest')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    return p


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


def _check_arguments(args):
    """A usage-error message for bad arguments, else ``None``."""
    if not args.model_path:
        return default_model_hint()
    if args.tile < 0 or args.tile_pad < 0:
        return '--tile and --tile_pad must be >= 0'
    if args.tile and args.tile < smallest_useful_tile(args.tile_pad):
        return (f'--tile {args.tile} is too small: each tile is computed with --tile_pad {args.tile_pad} pixels of '
                f'overlap on every side, so tiles under {smallest_useful_tile(args.tile_pad)} pixels spend most of '
                f'their time on the overlap; use --tile 0 (whole image) or --tile '
                f'{smallest_useful_tile(args.tile_pad)} or more')
    if osp.exists(args.output) and not osp.isdir(args.output):
        return f'-o {args.output} is an existing file; -o names the output folder'
    return None


def main(argv=None):
    args = build_parser().parse_args(argv)
    counts = {'images': 0, 'written': 0, 'failed': 0, 'kept': 0, 'megapixels': 0.0}
    with stop_on_signals():
        try:
            return _run(args, counts)
        except Interrupted as stop:
            print(f'sclle-enhance: stopped by {stop}: {counts["written"]} of {counts["images"]} image(s) written, '
                  f'{counts["failed"]} failed, {counts["kept"]} existing output(s) kept; the image in progress was '
                  'abandoned and its temporary file removed (rerun with --skip_existing to finish)', flush=True)
            return 128 + stop.signum


def _run(args, counts):
    err = sys.stderr
    problem = _check_arguments(args)
    if problem:
        print(f'sclle-enhance: error: {problem}', file=err)
        return 2
    try:
        root, images, skipped = collect_inputs(args.input, args.recursive)
    except ValueError as e:
        print(f'sclle-enhance: error: {e}', file=err)
        return 2
    counts['images'] = len(images)
    output_dir = osp.abspath(args.output)
    targets = [output_path_for(path, root, output_dir, args.suffix, args.ext) for path in images]
    existing = [out for out, _ in targets if osp.lexists(out)]
    if existing and not (args.overwrite or args.skip_existing):
        print(f'sclle-enhance: error: {len(existing)} output file(s) already exist, e.g. {existing[0]}; pass '
              '--overwrite to replace them or --skip_existing to keep them', file=err)
        return 2
    try:
        enhancer = Enhancer(args.model_path, device=args.device, precision=args.precision, tile=args.tile,
                            tile_pad=args.tile_pad, backend=args.backend)
    except (CheckpointError, RuntimeError, ValueError) as e:
        print(f'sclle-enhance: error: {e}', file=err)
        return 2
    for path in skipped:
        print(f'skipped (not an image): {path}', file=err)
    if not images:
        print(f'sclle-enhance: error: no image in {args.input} ({len(skipped)} other file(s))', file=err)
        return 2
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        print(f'sclle-enhance: error: cannot create the output folder -o {args.output}: {e}', file=err)
        return 2
    for path in remove_stale_temporaries(output_dir):
        print(f'removed {path} (temporary file of an interrupted run)', file=err)
    start = time.perf_counter()
    try:
        from tqdm import tqdm
        bar = tqdm(images, unit='img', disable=args.quiet, file=err)
    except ImportError:
        bar = images
    try:
        failures = _enhance_all(args, enhancer, bar, images, targets, counts)
    finally:
        if hasattr(bar, 'close'):
            bar.close()
    seconds = time.perf_counter() - start
    megapixels = counts['megapixels']
    print(f'sclle-enhance: {counts["written"]} image(s) written to {output_dir}, {megapixels:.2f} MP in '
          f'{seconds:.1f} s ({megapixels / max(seconds, 1e-9):.2f} MP/s); {len(failures)} failed; '
          f'{counts["kept"]} existing output(s) kept; {len(skipped)} non-image file(s) skipped')
    for path, msg in failures:
        print(f'  failed: {path}: {msg}')
    return 1 if failures else 0


def _enhance_all(args, enhancer, bar, images, targets, counts):
    """Enhance ``images`` (iterated through the progress ``bar``) into their ``targets``, counting in ``counts``;
    returns ``[(path, error)]``."""
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
            if args.skip_existing and osp.lexists(out_path):
                counts['kept'] += 1
                continue
            img = read_image(path)
            out = enhance_pixels(enhancer, img.pixels, args.model_path)
            data, notes = encode_image(out, fmt, img.icc)
            os.makedirs(osp.dirname(out_path), exist_ok=True)
            write_atomic(out_path, data)
            counts['written'] += 1
            counts['megapixels'] += out.shape[0] * out.shape[1] / 1e6
            for note in img.notes + [f'{out_path}: {n}' for n in notes]:
                _log(bar, note)
        except Exception as e:  # noqa: BLE001  (one bad image must not stop the batch)
            failures.append((path, str(e)))
            counts['failed'] += 1
            _log(bar, f'FAILED {path}: {e}')
    return failures


def _log(bar, msg):
    if hasattr(bar, 'write'):
        bar.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr)


if __name__ == '__main__':
    sys.exit(main())
