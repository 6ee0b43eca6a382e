"""Which files are images, and how folders are walked: one extension list and one walker for every reader of image
folders (the datasets, the exposure split, the command line, the evaluation protocols), so that they all see the
same images in the same order."""
import os
import os.path as osp

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


def is_image_file(path):
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def walk_files(folder, recursive=False, exclude=()):
    """Sorted paths of the files in ``folder`` (and its sub-folders when ``recursive``).

    Hidden files and folders are skipped (temporaries, ``.ipynb_checkpoints``); symbolic links are followed, since
    the study and the README link data folders; ``exclude``: folders not entered (an output folder inside the input).
    """
    exclude = {osp.abspath(e) for e in exclude}
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.') and osp.abspath(osp.join(root, d)) not in exclude)
        found.extend(osp.join(root, f) for f in sorted(files) if not f.startswith('.'))
        if not recursive:
            break
    return found


def list_images(folder, recursive=False, exclude=()):
    """The image files of :func:`walk_files`."""
    return [p for p in walk_files(folder, recursive, exclude) if is_image_file(p)]
