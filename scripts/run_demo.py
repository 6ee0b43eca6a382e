"""The embedded demo: build a small dataset from images inside installed packages, train SCL-LLE through BasicSR's
runner for a few minutes on CPU, then draw a before/after contact sheet and the loss curves.

    make demo            (or: python scripts/run_demo.py [--total_iter N], or python -m sclle_basicsr.study.demo)

Everything is written under ``demo_data/`` (inputs) and ``experiments/SCLLLE_demo/`` (BasicSR's run folder; the
folder of a previous demo run is archived by BasicSR, never overwritten) of the working directory.
"""
from sclle_basicsr.study.demo import main

if __name__ == '__main__':
    main()
