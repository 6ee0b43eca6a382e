"""Train with BasicSR's runner: ``python -m sclle_basicsr.train -opt <file>.yml [--launcher pytorch]``.

Its root is the working directory: ``experiments/``, ``results/`` and ``tb_logger/`` are written there.
"""
import os

# sclle_basicsr before basicsr: it makes basicsr 1.4.2 importable beside torchvision >= 0.17
from sclle_basicsr import prepare_basicsr_runner  # registers the archs, datasets, losses and models

# isort: split
from basicsr.train import train_pipeline

if __name__ == '__main__':
    prepare_basicsr_runner()
    train_pipeline(os.getcwd())
