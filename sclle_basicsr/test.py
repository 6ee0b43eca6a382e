"""Test with BasicSR's runner: ``python -m sclle_basicsr.test -opt <file>.yml``.

Its root is the working directory: ``experiments/``, ``results/`` and ``tb_logger/`` are written there.
"""
import os

# sclle_basicsr before basicsr: it makes basicsr 1.4.2 importable beside torchvision >= 0.17
from sclle_basicsr import prepare_basicsr_runner  # registers the archs, datasets, losses and models

# isort: split
from basicsr.test import test_pipeline

if __name__ == '__main__':
    prepare_basicsr_runner()
    test_pipeline(os.getcwd())
