"""Frames per second of ``sclle-enhance`` on video, end to end (decode, enhance, encode, mux) through
:func:`~sclle_basicsr.enhance.video.enhance_video`, with the network's share timed apart and the peak resident
memory of each run (streaming keeps it flat in the video's length)."""
import os
import os.path as osp
import time

import numpy as np

from sclle_basicsr.benchmarks.memory import PeakRSS
from sclle_basicsr.enhance.video import VideoOptions, enhance_video
from sclle_basicsr.enhance.video_samples import pan_frames, write_video

SIZES = {'720p': (1280, 720), '1080p': (1920, 1080)}


def frame_size(name):
    """``(width, height)`` of a :data:`SIZES` name or of ``WxH``."""
    if name in SIZES:
        return SIZES[name]
    width, sep, height = name.partition('x')
    if not (sep and width.isdigit() and height.isdigit()):
        raise ValueError(f'frame size {name!r}: expected one of {", ".join(SIZES)} or WxH')
    return int(width), int(height)


class TimedEnhancer:
    """An :class:`~sclle_basicsr.inference.Enhancer` whose ``enhance_tensor`` calls are timed (``seconds``)."""

    def __init__(self, enhancer):
        self.enhancer = enhancer
        self.seconds = 0.0
        self.batch = 0

    def enhance_tensor(self, x):
        self.batch = max(self.batch, x.shape[0])
        start = time.perf_counter()
        try:
            return self.enhancer.enhance_tensor(x)
        finally:
            self.seconds += time.perf_counter() - start


def make_clip(path, still, size, frames, rate=30):
    """A ``frames``-long pan across ``still`` (RGB uint8, larger than ``size``) written to ``path`` (x264, crf 18)."""
    write_video(path, pan_frames(still, size, frames, step=6), rate=rate)


def time_run(enhancer, src, workdir, options):
    """``{'frames', 'seconds', 'fps', 'network_fps', 'peak_rss_mib'}`` of one enhancement of ``src``."""
    out = osp.join(workdir, 'out_' + osp.basename(src))
    if osp.exists(out):
        os.unlink(out)
    timed = TimedEnhancer(enhancer)
    with PeakRSS() as rss:
        start = time.perf_counter()
        frames, _, _ = enhance_video(timed, src, out, 'mp4', options)
        seconds = time.perf_counter() - start
    os.unlink(out)
    return {'frames': frames, 'seconds': seconds, 'fps': frames / seconds, 'network_fps': frames / timed.seconds,
            'peak_rss_mib': rss.peak / 2**20, 'batch': timed.batch}


def run_benchmark(model_path, still, workdir, sizes=('720p', '1080p'), precisions=('fp32', 'bf16'), frames=24,
                  batch=0, long_frames=None):
    """Rows ``{'size', 'precision', 'backend', 'frames', 'fps', 'network_fps', 'peak_rss_mib', ...}``; with
    ``long_frames``, the first size and precision also run on a clip that many frames long (memory check)."""
    import torch
    from PIL import Image

    from sclle_basicsr.inference import Enhancer
    rows = []
    for k, size in enumerate(sizes):
        width, height = frame_size(size)
        big = np.asarray(Image.fromarray(still).resize((width * 5 // 4, height * 5 // 4), Image.BICUBIC))
        clips = {frames: osp.join(workdir, f'{size}_{frames}.mp4')}
        if long_frames and k == 0:
            clips[long_frames] = osp.join(workdir, f'{size}_{long_frames}.mp4')
        for count, path in clips.items():
            make_clip(path, big, (width, height), count)
        for i, precision in enumerate(precisions):
            enhancer = Enhancer(model_path, device='cpu', precision=precision)
            options = VideoOptions(batch=batch)
            enhancer.enhance_tensor(torch.zeros(1, 3, height, width))  # warm-up: first-call allocations
            counts = [frames] + ([long_frames] if long_frames and i == 0 and k == 0 else [])
            for count in counts:
                row = time_run(enhancer, clips[count], workdir, options)
                rows.append(dict(row, size=size, precision=precision, backend=enhancer.backend))
        for path in clips.values():
            os.unlink(path)
    return rows


def markdown_table(rows):
    lines = ['| size | precision | backend | batch | frames | end to end, frames/s | network alone, frames/s | '
             'peak RSS, MiB |', '|' + '---|' * 8]
    for r in rows:
        lines.append(f'| {r["size"]} | {r["precision"]} | {r["backend"]} | {r["batch"]} | {r["frames"]} | '
                     f'{r["fps"]:.2f} | {r["network_fps"]:.2f} | {r["peak_rss_mib"]:.0f} |')
    return '\n'.join(lines)
