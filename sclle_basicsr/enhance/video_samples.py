"""Short videos made here from frames, for the tests, the flicker measurement and the video benchmark: no video
file ships with the project, and the shared assets hold still night frames (BDD) only, so motion is a slow pan
across a still and exposure changes are a gain per frame."""
from fractions import Fraction

import numpy as np


def synthetic_still(width, height, seed=0):
    """A dark RGB uint8 still of ``width`` x ``height`` with structure for an encoder and a curve to act on
    (waves, a brighter block, noise), for clips where no photo is at hand."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = (30 + 20 * np.sin(xx / 9.0) + 15 * np.cos(yy / 7.0))[..., None] * np.array([1.0, 0.8, 0.6])
    base[height // 7:height * 3 // 7, width // 8:width // 3] += 40
    return np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)


def pan_frames(image, size, count, step=4, gains=None):
    """``count`` RGB uint8 frames of ``size`` (width, height), a window panning ``step`` pixels a frame across
    ``image`` (H x W x 3 uint8, larger than ``size``; it bounces at the edges), each times ``gains[i]`` (an
    exposure change; clipped to 255)."""
    width, height = size
    h, w = image.shape[:2]
    if w < width or h < height:
        raise ValueError(f'the image ({w}x{h}) is smaller than the frames ({width}x{height})')
    span_x, span_y = max(w - width, 1), max(h - height, 1)
    for i in range(count):
        x, y = _bounce(i * step, span_x), _bounce(i * step // 2, span_y)
        frame = image[y:y + height, x:x + width]
        if gains is not None:
            frame = np.clip(frame.astype(np.float32) * gains[i] + 0.5, 0, 255).astype(np.uint8)
        yield np.ascontiguousarray(frame)


def _bounce(pos, span):
    pos %= 2 * span
    return pos if pos <= span else 2 * span - pos


def exposure_gains(count, steps=((0, 1.0),), flicker=0.0, period=4):
    """Per-frame gains: piecewise constant (``steps``: ``(first frame, gain)`` pairs) times ``1 + flicker *
    sin(2 pi t / period)`` (a lamp or auto-exposure flicker)."""
    gains = np.ones(count)
    for start, gain in steps:
        gains[start:] = gain
    return gains * (1 + flicker * np.sin(2 * np.pi * np.arange(count) / period))


def write_video(path, frames, rate=25, codec='libx264', pix_fmt='yuv420p', crf=18, pts=None, time_base=None,
                rotation=0, audio=None, container_format=None):
    """Write RGB uint8 ``frames`` (an iterable) to ``path``; returns the number of frames.

    ``pts``: timestamps in ``time_base`` units (a variable frame rate), else one frame per 1 / ``rate``;
    ``rotation``: display rotation in degrees (counter-clockwise); ``audio``: None, or ``(codec, sample_rate)``
    for a mono tone as long as the video (e.g. ``('aac', 16000)``, ``('pcm_u8', 8000)``).
    """
    import av

    rate = Fraction(rate).limit_denominator(1001)
    time_base = Fraction(time_base) if time_base else 1 / rate
    with av.open(str(path), 'w', format=container_format) as out:
        video, count = None, 0
        for i, rgb in enumerate(frames):
            if video is None:
                options = {'crf': str(crf)} if codec in ('libx264', 'libx265') else {}
                video = out.add_stream(codec, rate=rate, options=options)
                video.height, video.width = rgb.shape[:2]
                video.pix_fmt = pix_fmt
                video.time_base = video.codec_context.time_base = time_base
                if rotation:
                    video.set_display_rotation(rotation)
                tone = _add_audio(out, audio) if audio else None
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format='rgb24')
            frame.pts = pts[i] if pts is not None else int(round(i / (rate * time_base)))
            frame.time_base = time_base
            out.mux(video.encode(frame))
            count += 1
        if video is None:
            raise ValueError('no frames to write')
        out.mux(video.encode(None))
        if tone is not None:
            seconds = float((frame.pts + 1 / (rate * time_base)) * time_base)
            tone(seconds)
    return count


def _add_audio(out, audio):
    """Add a mono audio stream; returns a function writing ``seconds`` of a 440 Hz tone into it."""
    import av

    codec, sample_rate = audio
    stream = out.add_stream(codec, rate=sample_rate, layout='mono')

    def tone(seconds):
        samples = int(seconds * sample_rate)
        wave = 0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / sample_rate)
        block = 1024
        for start in range(0, samples, block):
            chunk = wave[start:start + block][None].astype(np.float32)
            frame = av.AudioFrame.from_ndarray(chunk, format='flt', layout='mono')
            frame.sample_rate, frame.pts = sample_rate, start
            frame.time_base = Fraction(1, sample_rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))

    return tone
