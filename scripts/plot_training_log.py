"""Plot the losses of a BasicSR training run (all its train_*.log files, resumed runs included) to a PNG, and its
validation metrics (one line per validation set, and their mean) to a second PNG when the run validated.

A resumed run logs some iterations again; the last value logged for an iteration is kept.

    python scripts/plot_training_log.py experiments/SCLLLE_assets_cpu [--smooth 8] [--out loss_curves.png]
        [--out_val validation_curves.png]
"""
import argparse
import os.path as osp
import sys

from sclle_basicsr.runner.training_log import plot_losses, plot_validation, read_run_losses, read_run_validation


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('experiment', help='experiment folder holding train_*.log')
    parser.add_argument('--smooth', type=int, default=8, help='running mean over this many logged points')
    parser.add_argument('--out', default=None, help='PNG path (default <experiment>/loss_curves.png)')
    parser.add_argument('--out_val', default=None, help='PNG path (default <experiment>/validation_curves.png)')
    args = parser.parse_args(argv)
    try:
        curves, logs = read_run_losses(args.experiment)
    except FileNotFoundError as err:
        sys.exit(f'error: {err}')
    if not curves:
        sys.exit(f'error: no loss lines (l_*) in {logs}')
    out = args.out or osp.join(args.experiment, 'loss_curves.png')
    plot_losses(curves, out, smooth=args.smooth)
    last = max(it for points in curves.values() for it, _ in points)
    print(f'{len(logs)} log(s), iterations up to {last}: {", ".join(sorted(curves))} -> {out}')
    validation, _ = read_run_validation(args.experiment)
    if validation:
        out_val = args.out_val or osp.join(args.experiment, 'validation_curves.png')
        plot_validation(validation, out_val)
        last = max(it for points in validation.values() for it, _ in points)
        names = sorted({f'{metric} of {dataset}' for dataset, metric in validation})
        print(f'validation up to iteration {last}: {", ".join(names)} -> {out_val}')


if __name__ == '__main__':
    main()
