"""Pytest plugin that runs BasicSR's own test suite with ``sclle_basicsr`` imported first, as in a user's process.

Loaded by ``tests/test_basicsr_upstream.py`` (``-p basicsr_with_plugin``).  It skips, with the reason, the upstream
tests this machine cannot run: those calling ``.cuda()`` without a CUDA device, and those reading test images that
BasicSR's repository does not hold (``tests/data/gt`` and ``lq`` are not committed there).
"""
import inspect
import os.path as osp
import re

import pytest
import torch

import sclle_basicsr  # noqa: F401  (before BasicSR's tests import basicsr: registries and compatibility fixes)

DATA_PATH = re.compile(r"""['"](tests/data/[^'"]+)['"]""")


def pytest_collection_modifyitems(config, items):
    for item in items:
        source = inspect.getsource(item.function)
        if '.cuda()' in source and not torch.cuda.is_available():
            item.add_marker(pytest.mark.skip(reason='calls .cuda(): needs a CUDA device'))
            continue
        missing = sorted({p for p in DATA_PATH.findall(source) if not osp.exists(osp.join(config.rootpath, p))})
        if missing:
            item.add_marker(pytest.mark.skip(reason=f'reads {", ".join(missing)}: not in BasicSR\'s repository'))
