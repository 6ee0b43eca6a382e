"""Train with BasicSR's runner: ``python sclle_basicsr/train.py -opt options/train/<file>.yml [--launcher pytorch]``."""
import os.path as osp

from basicsr.train import train_pipeline

from sclle_basicsr import prepare_basicsr_runner  # importing registers the archs, datasets, losses and models

if __name__ == '__main__':
    prepare_basicsr_runner()
    train_pipeline(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
