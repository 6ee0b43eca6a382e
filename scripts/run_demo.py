"""The embedded demo: build a small dataset from images inside installed packages, train SCL-LLE through
``sclle_basicsr/train.py`` for a few minutes on CPU, then draw a before/after contact sheet and the loss curves.

    make demo            (or: python scripts/run_demo.py [--total_iter N])

Everything is written under ``demo_data/`` (inputs) and ``experiments/SCLLLE_demo/`` (BasicSR's run folder; the
folder of a previous demo run is archived by BasicSR, never overwritten).
"""
import argparse

from sclle_basicsr.demo import DEMO_DATA, check_data_root, run_demo


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--total_iter', type=int, default=150)
    parser.add_argument('--data', default=DEMO_DATA)
    args = parser.parse_args(argv)
    try:
        check_data_root(args.data)
    except ValueError as err:
        raise SystemExit(f'--data {err}') from None
    run_dir, niqe = run_demo(args.total_iter, args.data)
    print(f'\nDemo done. Validation NIQE (lower is better) per validation round: {", ".join(niqe)}')
    print(f'Enhanced images: {run_dir}/visualization/\nContact sheet:   {run_dir}/contact_sheet.png\n'
          f'Loss curves:     {run_dir}/loss_curves.png\nCheckpoints:     {run_dir}/models/')


if __name__ == '__main__':
    main()
