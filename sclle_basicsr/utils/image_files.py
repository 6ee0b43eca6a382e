"""Which files are images (and videos), and how folders are walked: one extension list and one walker for every
reader of image folders (the datasets, the exposure split, the command line, the evaluation protocols), so that they
all see the same images in the same order; the command line also takes the video files of a folder."""
import os
import os.path as osp

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.ppm', '.pgm')


# Containers FFmpeg (through PyAV) demuxes; only the command line reads them (sclle_basicsr.enhance.video).
VIDEO_EXTENSIONS = ('.mp4', '.m4v', '.mov', '.mkv', '.webm', '.avi', '.mpg', '.mpeg', '.ts', '.mts', '.m2ts',
                    '.wmv', '.flv', '.3gp')


def is_image_file(path):
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def is_video_file(path):
    return str(path).lower().endswith(VIDEO_EXTENSIONS)


def walk_files(folder, recursive=False, exclude=()):
    """Sorted paths of the files in ``folder`` (and its sub-folders when ``recursive``).

    Hidden files and folders are skipped (temporaries, ``.ipynb_checkpoints``); symbolic links are followed, since
    the study and the README link data folders, but each real folder is entered once, so a link to a folder above
    it (a loop) or a second link to one folder adds nothing; ``exclude``: folders not entered (an output folder
    inside the input).
    """
    exclude = {osp.abspath(e) for e in exclude}
    found, entered = [], set()

    def first_visit(path):
        try:
            st = os.stat(path)
        except OSError:  # a broken link: os.walk lists it with the folders but cannot enter it
            return False
        key = (st.st_dev, st.st_ino)
        if key in entered:
            return False
        entered.add(key)
        return True

    first_visit(folder)
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.') and osp.abspath(osp.join(root, d)) not in exclude)
        dirs[:] = [d for d in dirs if first_visit(osp.join(root, d))] if recursive else dirs
        found.extend(osp.join(root, f) for f in sorted(files) if not f.startswith('.'))
        if not recursive:
            break
    return found


def list_images(folder, recursive=False, exclude=()):
    """The image files of :func:`walk_files`."""
    return [p for p in walk_files(folder, recursive, exclude) if is_image_file(p)]
