"""BasicSR's own test suite (its repository's ``tests/``, not in its wheel or sdist) passes with the plugin imported.

The suite is found at ``$BASICSR_SOURCE`` (a BasicSR 1.4.2 source tree: ``git archive v1.4.2 tests`` of
XPixelGroup/BasicSR is enough), else at ``<assets>/basicsr_1.4.2``; without either the test is skipped.  It runs in
a fresh process through ``tests/upstream/basicsr_with_plugin.py``, which imports ``sclle_basicsr`` first and skips the
upstream tests that need CUDA or images the repository does not hold.
"""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from sclle_basicsr.utils.assets import asset_path

SOURCE = os.environ.get('BASICSR_SOURCE') or asset_path('basicsr_1.4.2')
HERE = osp.dirname(osp.abspath(__file__))


@pytest.mark.skipif(not osp.isdir(osp.join(SOURCE, 'tests')),
                    reason=f'BasicSR\'s test suite not found at {SOURCE}/tests (set BASICSR_SOURCE)')
def test_basicsr_own_suite_passes_with_the_plugin_imported(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([osp.join(HERE, 'upstream'), osp.dirname(HERE),
                                                       os.environ.get('PYTHONPATH', '')]))
    proc = subprocess.run([sys.executable, '-m', 'pytest', '-q', '-rs', '-p', 'basicsr_with_plugin',
                           '-p', 'no:cacheprovider', '--import-mode=importlib', '-o', 'addopts=',
                           '--rootdir', SOURCE, '-c', os.devnull, 'tests'],
                          cwd=SOURCE, env=env, capture_output=True, text=True, timeout=600)
    print(proc.stdout[-3000:])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = proc.stdout.strip().splitlines()[-1]
    passed = re.search(r'(\d+) passed', summary)
    assert passed and int(passed.group(1)) >= 6 and 'failed' not in summary and 'error' not in summary, summary
