"""Loss curves of a BasicSR training run, read from its ``train_*.log`` files and plotted to a picture.

The logs are the one record every run leaves, resumed runs included, so curves can be drawn for any run without
TensorBoard.
"""
import glob
import io
import os.path as osp
import re

import numpy as np

from sclle_basicsr.atomic_files import write_atomic


def parse_losses(log_text):
    """{loss name: [(iteration, value), ...]} from BasicSR's training log lines."""
    curves = {}
    for line in log_text.splitlines():
        it = re.search(r'iter:\s*([\d,]+)', line)
        if not it:
            continue
        for key, value in re.findall(r'\b(l_\w+): ([-+0-9.e]+)', line):
            curves.setdefault(key, []).append((int(it.group(1).replace(',', '')), float(value)))
    return curves


def read_run_losses(folder):
    """``(curves, logs)`` of every ``train_*.log`` in ``folder`` (``logs`` oldest first: BasicSR timestamps their
    names); raises ``FileNotFoundError`` when there is none.

    A resumed run logs some iterations again; the last value logged for an iteration is kept.
    """
    logs = sorted(glob.glob(osp.join(glob.escape(folder), 'train_*.log')))
    if not logs:
        raise FileNotFoundError(f'no train_*.log in {folder}')
    merged = {}
    for log in logs:
        with open(log) as f:
            for key, points in parse_losses(f.read()).items():
                merged.setdefault(key, {}).update(points)
    return {key: sorted(points.items()) for key, points in merged.items()}, logs


def plot_losses(curves, path, smooth=0):
    """One panel per loss; with ``smooth`` > 1 also a running mean over that many logged points (noisy runs)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 2.8), squeeze=False)
    for ax, (key, points) in zip(axes[0], sorted(curves.items())):
        its, values = zip(*points)
        ax.plot(its, values, marker='.', alpha=0.4 if smooth > 1 else 1.0)
        if smooth > 1 and len(values) >= smooth:
            mean = np.convolve(values, np.ones(smooth) / smooth, mode='valid')
            ax.plot(its[smooth - 1:], mean, color='black', label=f'mean of {smooth}')
            ax.legend(fontsize=7)
        ax.set_title(key)
        ax.set_xlabel('iteration')
    fig.tight_layout()
    picture = io.BytesIO()
    fig.savefig(picture, format=osp.splitext(path)[1][1:] or 'png', dpi=100)
    plt.close(fig)
    write_atomic(path, picture.getvalue())
