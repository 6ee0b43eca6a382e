"""Image files into pixels, keeping what an enhanced copy must carry over: bit depth, alpha, gray, ICC profile,
with the EXIF orientation applied.  Files that cannot be decoded raise :class:`ImageReadError` saying why."""
import os

import numpy as np

from sclle_basicsr.inference import InvalidImageError, check_pixels

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
    except Exception:  # metadata only
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
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise ImageReadError(f'cannot read image {path}: the file is empty (0 bytes)')
    try:
        with Image.open(path) as img:
            mode = img.mode
            icc = img.info.get('icc_profile')
            try:
                orientation = int(img.getexif().get(0x0112, 1) or 1)
            except Exception:  # a broken EXIF block: no orientation
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
    if arr.size == 0:
        raise ImageReadError(f'cannot enhance {path}: it has no pixels ({arr.shape[1]}x{arr.shape[0]})')
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
