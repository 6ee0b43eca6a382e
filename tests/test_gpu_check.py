"""``make gpu-check`` without CUDA: it says so, runs its own code on the CPU at a tiny size and exits 0."""
import json
import subprocess
import sys

import pytest
import torch

from sclle_basicsr.utils.assets import REPO_ROOT


@pytest.mark.skipif(torch.cuda.is_available(), reason='on a CUDA machine the script measures for minutes')
def test_dry_run_without_cuda_checks_itself_and_writes_its_report(tmp_path):
    proc = subprocess.run([sys.executable, 'scripts/gpu_check.py', '--out', str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert 'no CUDA device here' in proc.stdout
    assert 'dry run passed' in proc.stdout
    report = json.loads((tmp_path / 'gpu_check.json').read_text())
    assert report['dry_run'] and report['ok']
    assert report['training_step']['results']['fp32']['finite']
    assert 'CPU' in report['training_step']['results']['fp16']['skipped'] or \
        'fp16' in report['training_step']['results']['fp16']['skipped']
    assert report['inference']['results']['fp32 tile 0']['mp_per_s'] > 0
    assert (tmp_path / 'gpu_check.md').read_text().startswith('# GPU check (dry run')
