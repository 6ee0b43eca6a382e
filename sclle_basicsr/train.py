"""Train with BasicSR's runner: ``python sclle_basicsr/train.py -opt options/train/<file>.yml [--launcher pytorch]``."""
import os.path as osp

import sclle_basicsr  # noqa: F401  (registers the archs, datasets, losses and models)
from basicsr.train import train_pipeline

if __name__ == '__main__':
    train_pipeline(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
