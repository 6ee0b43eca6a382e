"""Which files a run enhances and what each output is called: the input tree mirrored under the output folder,
with an optional suffix and the format kept where it can be written (PNG otherwise)."""
import os.path as osp

from sclle_basicsr.utils.image_files import IMAGE_EXTENSIONS, is_image_file, walk_files

OUTPUT_EXTS = {'png': '.png', 'jpg': '.jpg', 'tif': '.tif'}
_AUTO_KEEP = {'.png': 'png', '.jpg': 'jpg', '.jpeg': 'jpg', '.tif': 'tif', '.tiff': 'tif'}


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
    """``(output path, format)`` of input ``path`` under ``root``; ``ext`` 'auto' keeps png, jpg and tif."""
    rel = osp.relpath(path, root)
    stem, in_ext = osp.splitext(rel)
    fmt = _AUTO_KEEP.get(in_ext.lower(), 'png') if ext == 'auto' else ext
    out_ext = in_ext if ext == 'auto' and in_ext.lower() in _AUTO_KEEP else OUTPUT_EXTS[fmt]
    return osp.join(output_dir, stem + suffix + out_ext), fmt
