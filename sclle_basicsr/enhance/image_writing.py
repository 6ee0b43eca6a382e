"""Pixels into file bytes (PNG, JPEG, TIFF) with the ICC profile, bit depth and alpha kept where the format can
hold them; notes say what a format could not keep."""
import io
import struct
import zlib

import numpy as np


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
