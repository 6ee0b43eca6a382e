"""Flicker of enhanced videos against their inputs, measured without motion estimation (no warping):

* brightness change: the mean over consecutive frames of ``|m(t+1) - m(t)|``, ``m`` a frame's mean BT.601 luma
  in [0, 1], and its relative form ``|ln m(t+1) - ln m(t)|`` (a brightened video has larger absolute changes
  for the same look; the log change is what the eye sees as flicker);
* temporal difference: the mean absolute difference of consecutive frames, pixel by pixel, and the same divided by
  the mean brightness.

Each figure of the output divided by the input's: a relative ratio above 1 means the enhancement adds flicker.
The clips are videos written here (:mod:`sclle_basicsr.enhance.video_samples`) and enhanced through ``sclle-enhance``'s
own video path, codec included.
"""
import os
import os.path as osp

import numpy as np

from sclle_basicsr.enhance.video import VideoOptions, enhance_video
from sclle_basicsr.enhance.video_samples import exposure_gains, pan_frames, write_video
from sclle_basicsr.inference.enhancer import LUMA_BT601

FIGURES = ('brightness_change', 'brightness_change_rel', 'temporal_diff', 'temporal_diff_rel')

# Exposure scenarios over a clip of n frames: steady, steps (x1.5, x0.7), a 15 % flicker with a 4-frame period.
SCENARIOS = {
    'steady': lambda n: exposure_gains(n),
    'steps': lambda n: exposure_gains(n, steps=((0, 1.0), (n // 4, 1.5), (n // 2, 0.7), (3 * n // 4, 1.0))),
    'flicker': lambda n: exposure_gains(n, flicker=0.15, period=4),
}


def flicker_figures(frames):
    """The :data:`FIGURES` of a clip (a sequence of RGB uint8 frames, at least two), and its mean brightness."""
    f = np.stack(frames).astype(np.float32) / 255
    luma = (f * np.asarray(LUMA_BT601, np.float32)).sum(-1).mean((1, 2))
    log_luma = np.log(np.maximum(luma, 1e-4))
    diff = np.abs(np.diff(f, axis=0)).mean()
    return {'brightness_change': float(np.abs(np.diff(luma)).mean()),
            'brightness_change_rel': float(np.abs(np.diff(log_luma)).mean()),
            'temporal_diff': float(diff), 'temporal_diff_rel': float(diff / luma.mean()),
            'brightness': float(luma.mean())}


def read_frames(path):
    """The RGB uint8 frames of a video file's first video stream."""
    import av
    with av.open(str(path)) as container:
        return [f.to_ndarray(format='rgb24') for f in container.decode(video=0)]


def measure_clip(enhancer, frames, workdir, name, alphas, rate=25, crf=18):
    """Write ``frames`` as a video, enhance it once per smoothing ``alpha``; returns ``{alpha: (input figures,
    output figures)}``, the input as decoded from the file the enhancer read."""
    src = osp.join(workdir, f'{name}.mp4')
    write_video(src, frames, rate=rate, crf=crf)
    decoded = read_frames(src)
    found = {}
    for alpha in alphas:
        out = osp.join(workdir, f'{name}_alpha{alpha}.mp4')
        if osp.exists(out):
            os.unlink(out)
        enhance_video(enhancer, src, out, 'mp4', VideoOptions(crf=crf, smoothing=alpha))
        found[alpha] = (flicker_figures(decoded), flicker_figures(read_frames(out)))
        os.unlink(out)
    os.unlink(src)
    return found


def measure(enhancer, stills, workdir, alphas=(0.0, 0.5, 0.8), frames=32, size=(640, 360), step=4):
    """Pan clips across each of ``stills`` (RGB uint8 arrays) under each of :data:`SCENARIOS`, enhanced with and
    without smoothing.  Returns rows ``{'scenario', 'alpha', 'input', 'output', 'ratio'}``, figures averaged over
    the stills."""
    rows = []
    for scenario, gains in SCENARIOS.items():
        per_alpha = {alpha: [] for alpha in alphas}
        for i, still in enumerate(stills):
            clip = list(pan_frames(still, size, frames, step=step, gains=gains(frames)))
            for alpha, pair in measure_clip(enhancer, clip, workdir, f'{scenario}{i}', alphas).items():
                per_alpha[alpha].append(pair)
        for alpha, pairs in per_alpha.items():
            mean_in = {k: float(np.mean([p[0][k] for p in pairs])) for k in pairs[0][0]}
            mean_out = {k: float(np.mean([p[1][k] for p in pairs])) for k in pairs[0][1]}
            rows.append({'scenario': scenario, 'alpha': alpha, 'input': mean_in, 'output': mean_out,
                         'ratio': {k: mean_out[k] / max(mean_in[k], 1e-12) for k in FIGURES}})
    return rows


def markdown_table(rows):
    head = ('| clip | smoothing α | mean brightness in → out | brightness change (abs) out/in | brightness change '
            '(log) in → out, ratio | temporal diff (abs) out/in | temporal diff / brightness, ratio |')
    lines = [head, '|' + '---|' * 7]
    for r in rows:
        i, o, q = r['input'], r['output'], r['ratio']
        lines.append(f'| {r["scenario"]} | {r["alpha"]:g} | {i["brightness"]:.3f} → {o["brightness"]:.3f} | '
                     f'{q["brightness_change"]:.2f} | {i["brightness_change_rel"]:.4f} → '
                     f'{o["brightness_change_rel"]:.4f}, {q["brightness_change_rel"]:.2f} | '
                     f'{q["temporal_diff"]:.2f} | {q["temporal_diff_rel"]:.2f} |')
    return '\n'.join(lines)
