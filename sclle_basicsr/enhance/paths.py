"""Which files a run enhances and what each output is called: the input tree mirrored under the output folder,
with an optional suffix and the format kept where it can be written (PNG, or MP4 for videos, otherwise)."""
import os.path as osp

from sclle_basicsr.utils.image_files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, is_image_file, is_video_file, walk_files

OUTPUT_EXTS = {'png': '.png', 'jpg': '.jpg', 'tif': '.tif'}
_AUTO_KEEP = {'.png': 'png', '.jpg': 'jpg', '.jpeg': 'jpg', '.tif': 'tif', '.tiff': 'tif'}
# Video containers written (FFmpeg muxer names); other video inputs are written as MP4.
VIDEO_MUXERS = {'.mp4': 'mp4', '.m4v': 'mp4', '.mov': 'mov', '.mkv': 'matroska'}


def is_input_file(path):
    return is_image_file(path) or is_video_file(path)


def collect_inputs(input_path, recursive):
    """``(root, inputs, skipped)``: image and video paths under ``input_path`` (sorted) and the other files."""
    if osp.isfile(input_path):
        if not is_input_file(input_path):
            raise ValueError(f'{input_path} is neither an image nor a video file (extensions: '
                             f'{", ".join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)})')
        return osp.dirname(osp.abspath(input_path)), [osp.abspath(input_path)], []
    if not osp.isdir(input_path):
        raise ValueError(f'input {input_path} not found')
    root = osp.abspath(input_path)
    inputs, skipped = [], []
    for path in walk_files(root, recursive):
        (inputs if is_input_file(path) else skipped).append(path)
    return root, inputs, skipped


def output_path_for(path, root, output_dir, suffix, ext):
    """``(output path, format)`` of input ``path`` under ``root``; ``ext`` 'auto' keeps png, jpg and tif.

    A video keeps its container when it is MP4, MOV or Matroska and becomes MP4 otherwise (``ext`` is for images);
    its format is the FFmpeg muxer name (:data:`VIDEO_MUXERS`).
    """
    rel = osp.relpath(path, root)
    stem, in_ext = osp.splitext(rel)
    if is_video_file(path):
        muxer = VIDEO_MUXERS.get(in_ext.lower())
        return osp.join(output_dir, stem + suffix + (in_ext if muxer else '.mp4')), muxer or 'mp4'
    fmt = _AUTO_KEEP.get(in_ext.lower(), 'png') if ext == 'auto' else ext
    out_ext = in_ext if ext == 'auto' and in_ext.lower() in _AUTO_KEEP else OUTPUT_EXTS[fmt]
    return osp.join(output_dir, stem + suffix + out_ext), fmt
