"""Loss and validation curves of a BasicSR training run, read from its ``train_*.log`` files and plotted.

The logs are the one record every run leaves, resumed runs included, so curves can be drawn for any run without
TensorBoard.
"""
import glob
import io
import os.path as osp
import re

import numpy as np

from sclle_basicsr.utils.atomic_files import write_atomic


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


def parse_validation(log_text):
    """{(dataset, metric): [(iteration, value), ...]} from BasicSR's validation blocks.

    BasicSR logs ``Validation <dataset>`` and then ``# <metric>: <value>`` lines without the iteration; validation
    runs right after the training step of its iteration, so each block belongs to the last iteration logged before
    it (exact when ``val_freq`` is a multiple of ``print_freq``, as in every shipped option file).
    """
    curves, iteration, dataset = {}, None, None
    for line in log_text.splitlines():
        it = re.search(r'iter:\s*([\d,]+)', line)
        if it:
            iteration, dataset = int(it.group(1).replace(',', '')), None
            continue
        started = re.search(r'Validation (\S+)\s*$', line)
        if started:
            dataset = started.group(1)
            continue
        value = re.match(r'\s*# (\w+): ([-+0-9.e]+|nan)', line)
        if value and dataset is not None and iteration is not None:
            curves.setdefault((dataset, value.group(1)), []).append((iteration, float(value.group(2))))
        elif line.strip() and not value:
            dataset = None
    return curves


def _run_logs(folder):
    logs = sorted(glob.glob(osp.join(glob.escape(folder), 'train_*.log')))
    if not logs:
        raise FileNotFoundError(f'no train_*.log in {folder}')
    return logs


def _merged(logs, parse):
    merged = {}
    for log in logs:
        with open(log) as f:
            for key, points in parse(f.read()).items():
                merged.setdefault(key, {}).update(points)
    return {key: sorted(points.items()) for key, points in merged.items()}


def read_run_validation(folder):
    """``(curves, logs)`` of the validation metrics in every ``train_*.log`` of ``folder``, as
    :func:`read_run_losses` (the last value logged for an iteration is kept)."""
    logs = _run_logs(folder)
    return _merged(logs, parse_validation), logs


def read_run_losses(folder):
    """``(curves, logs)`` of every ``train_*.log`` in ``folder`` (``logs`` oldest first: BasicSR timestamps their
    names); raises ``FileNotFoundError`` when there is none.

    A resumed run logs some iterations again; the last value logged for an iteration is kept.
    """
    logs = _run_logs(folder)
    return _merged(logs, parse_losses), logs


def _save_figure(fig, path):
    import matplotlib.pyplot as plt
    fig.tight_layout()
    picture = io.BytesIO()
    fig.savefig(picture, format=osp.splitext(path)[1][1:] or 'png', dpi=100)
    plt.close(fig)
    write_atomic(path, picture.getvalue())


def plot_validation(curves, path):
    """One panel per metric: a line per dataset and, with several datasets validated at the same iterations,
    their mean (the figure a reader compares with the paper's averages)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    metrics = sorted({metric for _, metric in curves})
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        series = {dataset: dict(points) for (dataset, name), points in sorted(curves.items()) if name == metric}
        for dataset, points in series.items():
            ax.plot(list(points), list(points.values()), marker='.', alpha=0.6, label=dataset)
        common = sorted(set.intersection(*(set(points) for points in series.values())))
        if len(series) > 1 and common:
            mean = [float(np.mean([points[it] for points in series.values()])) for it in common]
            ax.plot(common, mean, marker='o', color='black', linewidth=2, label='mean')
            for it, value in zip(common, mean):
                ax.annotate(f'{value:.3f}', (it, value), textcoords='offset points', xytext=(0, 6), fontsize=7,
                            ha='center')
        ax.set_title(metric)
        ax.set_xlabel('iteration')
        ax.legend(fontsize=7)
    _save_figure(fig, path)


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
    _save_figure(fig, path)
