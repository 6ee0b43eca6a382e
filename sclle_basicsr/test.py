"""Test with BasicSR's runner: ``python sclle_basicsr/test.py -opt options/test/<file>.yml``."""
import os.path as osp

# sclle_basicsr before basicsr: it makes basicsr 1.4.2 importable beside torchvision >= 0.17
from sclle_basicsr import prepare_basicsr_runner  # registers the archs, datasets, losses and models

# isort: split
from basicsr.test import test_pipeline

if __name__ == '__main__':
    prepare_basicsr_runner()
    test_pipeline(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
