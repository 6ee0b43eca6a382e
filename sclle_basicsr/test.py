"""Test with BasicSR's runner: ``python sclle_basicsr/test.py -opt options/test/<file>.yml``."""
import os.path as osp

from basicsr.test import test_pipeline

from sclle_basicsr import prepare_basicsr_runner  # importing registers the archs, datasets, losses and models

if __name__ == '__main__':
    prepare_basicsr_runner()
    test_pipeline(osp.abspath(osp.join(__file__, osp.pardir, osp.pardir)))
