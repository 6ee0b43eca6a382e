"""Video files enhanced end to end, streaming: packets are demuxed and decoded one at a time, frames enhanced in
batches of ``batch`` through the same :class:`~sclle_basicsr.inference.Enhancer` as images (precision, backend and
tiling alike), encoded and muxed as they come, so memory stays bounded whatever the length.  Timestamps (variable
frame rates included), the rotation and the colour tags are kept; audio is remuxed untouched
(:mod:`.video_output`); ``smoothing`` damps brightness flicker over time (:mod:`.temporal`, off by default).  The
output is written through :func:`~sclle_basicsr.utils.atomic_files.atomic_open`: a failed or killed run leaves no
partial file.  PyAV is the optional ``video`` extra."""
import contextlib
import dataclasses

import numpy as np
import torch

from sclle_basicsr.enhance.temporal import BrightnessSmoother
from sclle_basicsr.enhance.video_output import VideoError, VideoSink, describe_av_error, import_av
from sclle_basicsr.utils.atomic_files import atomic_open

# Batches of about this many pixels: larger ones gain under 15 % in speed on a CPU (docs/video.md) and each
# frame adds to the runtime's activations (about 1.4 GB per megapixel for ONNX Runtime).
AUTO_BATCH_PIXELS = 1_000_000


@dataclasses.dataclass
class VideoOptions:
    """``codec`` / ``crf``: the video encoder and its quality; ``batch``: frames per network call (0: by frame size,
    :func:`auto_batch`); ``smoothing``: :class:`~sclle_basicsr.enhance.temporal.BrightnessSmoother`'s alpha."""
    codec: str = 'libx264'
    crf: int = 18
    batch: int = 0
    smoothing: float = 0.0


def check_video_codec(name):
    """A usage-error message when ``name`` is not a video encoder of this PyAV build, else ``None``."""
    av = import_av()
    try:
        codec = av.codec.Codec(name, 'w')
    except (av.FFmpegError, ValueError):
        return f'--video_codec {name}: no such encoder in this PyAV build (e.g. libx264, libx265, libvpx-vp9, mpeg4)'
    if codec.type != 'video':
        return f'--video_codec {name} is a {codec.type} encoder, not a video one'
    return None


def auto_batch(width, height):
    """Frames per batch when ``--video_batch`` is 0: about :data:`AUTO_BATCH_PIXELS` a call, 1 to 8 frames."""
    return max(1, min(8, AUTO_BATCH_PIXELS // max(width * height, 1)))


def enhance_frames(enhancer, rgb, smoother=None):
    """``rgb`` ((N, H, W, 3) uint8) enhanced as one batch, same shape and dtype; ``smoother``: a
    :class:`~sclle_basicsr.enhance.temporal.BrightnessSmoother` carried from batch to batch, or None.

    The conversions run in NumPy: a PyTorch operator next to a runtime call would wake PyTorch's thread pool,
    which then competes with the runtime's threads (see :mod:`sclle_basicsr.inference.backends`).
    """
    x = np.divide(rgb.transpose(0, 3, 1, 2), np.float32(255), dtype=np.float32)
    with torch.inference_mode():
        y = enhancer.enhance_tensor(torch.from_numpy(x))
        if smoother is not None:
            y = smoother(y)
        y = y.numpy()
    return np.ascontiguousarray(np.rint(np.clip(y, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1))


def enhance_video(enhancer, path, out_path, muxer, options=None, replace=True, progress=None):
    """Enhance the video ``path`` into ``out_path`` (FFmpeg ``muxer``, e.g. 'mp4'); returns ``(frames, notes,
    megapixels)``.

    ``replace``: see :func:`~sclle_basicsr.utils.atomic_files.atomic_open`; ``progress(total)``: a bar (``update(n)``,
    ``close()``) counting frames, ``total`` None when the container does not say.  A file that cannot be
    demuxed or decoded, or that ends before the frames its index promises, raises :class:`VideoError`.
    """
    av = import_av()
    options = options or VideoOptions()
    try:
        source = av.open(path, metadata_errors='replace')
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoError(f'cannot read {path}: {describe_av_error(err)}') from None
    with source:
        if not source.streams.video:
            raise VideoError(f'{path} has no video stream')
        video = source.streams.video[0]
        video.thread_type = 'AUTO'
        bar = progress(video.frames or None) if progress else None
        try:
            with atomic_open(out_path, 'wb', replace=replace) as file:
                sink = VideoSink(file, muxer, source, options)
                with _closing(sink):
                    frames = _transcode(enhancer, source, video, sink, options, bar, path)
        except av.FFmpegError as err:  # reading errors are VideoErrors already: this is the output's
            raise VideoError(f'cannot write {out_path}: {describe_av_error(err)}') from None
        finally:
            if bar is not None:
                bar.close()
    return frames, sink.notes, frames * sink.width * sink.height / 1e6


@contextlib.contextmanager
def _closing(sink):
    """Close ``sink`` (trailer written) on success; on failure close it too but let the first error through."""
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):
            sink.close()
        raise
    sink.close()


def _transcode(enhancer, source, video, sink, options, bar, path):
    """The demux-decode-enhance-encode loop; returns the number of frames written."""
    av = import_av()
    audio = set(s.index for s in source.streams.audio)
    packets = source.demux(video, *source.streams.audio)
    batch, decoded, first_pts, last_pts, size = [], 0, None, None, options.batch
    smoother = BrightnessSmoother(options.smoothing) if options.smoothing else None

    def flush():
        rgb = np.stack([sink.frame_pixels(f) for f in batch])
        sink.write_frames(enhance_frames(enhancer, rgb, smoother), [f.pts for f in batch])
        if bar is not None:
            bar.update(len(batch))
        batch.clear()

    while True:
        try:
            packet = next(packets, None)
            frames = [] if packet is None or packet.stream.index in audio else video.decode(packet)
        except av.FFmpegError as err:
            raise VideoError(f'cannot read {path} past frame {decoded}: {describe_av_error(err)}') from None
        if packet is None:
            break
        if packet.stream.index in audio:
            sink.audio_packet(packet)
        for frame in frames:
            if not sink.started:
                sink.start(video, frame)
                size = size or auto_batch(sink.width, sink.height)
            decoded += 1
            first_pts = frame.pts if first_pts is None else first_pts
            last_pts = frame.pts if frame.pts is not None else last_pts
            batch.append(frame)
            if len(batch) >= size:
                flush()
    if batch:
        flush()
    if not decoded:
        raise VideoError(f'no frame of {path} could be decoded')
    if video.frames and decoded < video.frames:
        raise VideoError(f'{path} is truncated or damaged: {decoded} of the {video.frames} frames its index lists '
                         'could be decoded')
    _check_duration(video, first_pts, last_pts, path)
    sink.finish()
    return decoded


def _check_duration(video, first_pts, last_pts, path):
    """Refuse a video whose frames end well before the duration its container states (a cut Matroska file has
    no frame count, but keeps its header's duration)."""
    declared = _declared_seconds(video)
    if declared is None or first_pts is None or last_pts is None or not video.time_base:
        return
    period = 1 / float(video.average_rate or video.guessed_rate or 25)
    decoded = float((last_pts - first_pts) * video.time_base) + period
    if decoded < declared - 2 * period - 0.01 * declared:
        raise VideoError(f'{path} is truncated or damaged: its frames end at {decoded:.2f} s of the {declared:.2f} '
                         's its container states')


def _declared_seconds(video):
    """The video stream's duration in seconds, from the stream or its Matroska ``DURATION`` tag; None if neither."""
    if video.duration and video.time_base:
        return float(video.duration * video.time_base)
    tag = video.metadata.get('DURATION', '')
    try:
        hours, minutes, seconds = tag.split(':')
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None
