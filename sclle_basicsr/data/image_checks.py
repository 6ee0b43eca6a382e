"""Screening of image folders: report bad files by name instead of failing deep inside a DataLoader worker."""
import os.path as osp

from PIL import Image

from sclle_basicsr.utils.image_files import IMAGE_EXTENSIONS, is_image_file


def probe_image(path):
    """Decode ``path`` fully; return a note for the log ('' when plain RGB) or raise ``OSError`` saying why not.

    A full decode is what catches truncated files: OpenCV decodes a truncated JPEG into a grey-filled image
    without any error.
    """
    if osp.isfile(path) and osp.getsize(path) == 0:
        raise OSError(f'cannot decode image {path}: the file is empty (0 bytes)')
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise OSError(f'cannot decode image {path}: {err}') from err
    if mode == 'F':  # OpenCV's 8-bit colour read, which BasicSR's datasets use, returns nothing for these
        raise OSError(f'cannot use image {path}: float pixels (32-bit); convert it to 8 or 16 bits per channel')
    if mode in ('L', 'I;16', 'I;16B', 'I', '1'):
        return f'{path} is grayscale ({mode}); it is replicated to three channels'
    if mode in ('RGBA', 'LA', 'PA'):
        return f'{path} has an alpha channel; the alpha is ignored and the colour channels enhanced'
    return ''


def screen_image_paths(paths, folder, option_name, logger):
    """Keep the decodable images of ``paths``, logging each skipped or converted file by name.

    Raises ``ValueError`` naming ``folder`` and ``option_name`` when no image is left.
    """
    kept = []
    for path in paths:
        if not is_image_file(path):
            logger.warning(f'Skipping {path}: not an image file (extension not in {", ".join(IMAGE_EXTENSIONS)}).')
            continue
        try:
            note = probe_image(path)
        except OSError as err:
            logger.warning(f'Skipping {err}')
            continue
        if note:
            logger.info(note)
        kept.append(path)
    if not kept:
        raise ValueError(f'No readable image in {osp.abspath(folder)} (option {option_name}); '
                         f'{len(paths)} file(s) found there.')
    return kept
