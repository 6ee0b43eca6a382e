"""Train with BasicSR's runner: ``python sclle_basicsr/train.py -opt options/train/<file>.yml [--launcher pytorch]``."""
import os.path as osp

# sclle_basicsr before basicsr: it makes basicsr 1.4.2 importable beside torchvision >= 0.17
from sclle_basicsr import prepare_basicsr_runner  # registers the archs, datasets, losses and models

# isort: split
from basicsr.train import train_pipeline

if __name__ == '__main__':
    prepare_basicsr_runner()
    train_pipeline(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
