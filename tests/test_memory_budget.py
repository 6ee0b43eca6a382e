"""Memory-bounded inference: the tile is chosen from a memory budget, the pixels are the untiled ones, and an
explicit ``--tile 0`` keeps the whole image."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from sclle_basicsr.enhance import main
from sclle_basicsr.inference import Enhancer
from sclle_basicsr.inference import enhancer as enhancer_module
from sclle_basicsr.inference import memory_budget as budget
from sclle_basicsr.inference.memory_budget import MemoryBudgetError, parse_memory_size, tile_for_budget

CPU = torch.device('cpu')
MiB = 2**20


def low_light(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 90, (height, width, 3), dtype=np.uint8)


@pytest.fixture
def tiles_used(monkeypatch):
    """The tile each enhancement ran with."""
    used = []
    real = enhancer_module.run_tiled

    def spy(fn, x, tile, tile_pad):
        used.append(tile)
        return real(fn, x, tile, tile_pad)

    monkeypatch.setattr(enhancer_module, 'run_tiled', spy)
    return used


@pytest.mark.parametrize('backend', ['torch', 'onnxruntime'])
def test_a_large_image_under_a_small_budget_is_tiled_with_the_untiled_output(model_path, tiles_used, backend):
    img = low_light(600, 800)  # untiled: about 0.5 GB for the pass alone
    whole = Enhancer(model_path, device='cpu', tile=0, backend=backend).enhance(img)
    tiled = Enhancer(model_path, device='cpu', memory_budget='160MiB', backend=backend).enhance(img)
    assert tiles_used[0] == 0 and 64 <= tiles_used[1] < 600
    assert np.array_equal(tiled, whole)
    small = low_light(120, 160)  # fits: enhanced whole
    Enhancer(model_path, device='cpu', memory_budget='160MiB', backend=backend).enhance(small)
    assert tiles_used[2] == 0


def test_the_chosen_tile_is_the_largest_that_fits():
    per_pixel = budget.BYTES_PER_PIXEL[('cpu', 'torch', 'fp32')]
    kept = budget.FIXED_BYTES['cpu'] + 3000 * 4000 * budget.IO_BYTES_PER_PIXEL
    tile = tile_for_budget((1, 3, 3000, 4000), CPU, 'torch', 'fp32', 8, kept + 400 * 400 * per_pixel)
    assert tile == 384  # (384 + 2 * 8)^2 pixels of a pass fit exactly
    assert tile_for_budget((1, 3, 3000, 4000), CPU, 'torch', 'fp32', 8, kept + 399 * 399 * per_pixel) == 376
    kept_for_two = budget.FIXED_BYTES['cpu'] + 2 * 3000 * 4000 * budget.IO_BYTES_PER_PIXEL
    assert tile_for_budget((2, 3, 3000, 4000), CPU, 'torch', 'fp32', 8, kept_for_two + 2 * 400**2 * per_pixel) == 384
    whole = budget.FIXED_BYTES['cpu'] + 1000 * 1000 * (budget.IO_BYTES_PER_PIXEL + per_pixel)
    assert tile_for_budget((1, 3, 1000, 1000), CPU, 'torch', 'fp32', 8, whole) == 0
    assert tile_for_budget((1, 3, 1000, 1000), CPU, 'torch', 'fp32', 8, whole - 1) > 0
    with pytest.raises(MemoryBudgetError, match=r'a memory budget of 100 MiB is too small for a 4000x3000 image on '
                                                r'cpu: tiles of 64 pixels need .*; give a larger budget or a --tile'):
        tile_for_budget((1, 3, 3000, 4000), CPU, 'torch', 'fp32', 8, 100 * MiB)


def test_default_budgets_are_a_share_of_the_free_memory(monkeypatch):
    monkeypatch.setattr(budget, 'available_ram', lambda: 10 * 2**30)
    assert budget.default_budget(CPU) == 5 * 2**30
    monkeypatch.setattr(torch.cuda, 'mem_get_info', lambda device=None: (6 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, 'memory_reserved', lambda device=None: 3 * 2**30)
    monkeypatch.setattr(torch.cuda, 'memory_allocated', lambda device=None: 2**30)
    assert budget.default_budget(torch.device('cuda')) == int(0.8 * 8 * 2**30)  # free + cached but unused


def test_available_ram_reads_memavailable():
    with open('/proc/meminfo') as f:
        expected = next(int(line.split()[1]) for line in f if line.startswith('MemAvailable:')) * 1024
    assert abs(budget.available_ram() - expected) < 256 * MiB  # read a moment apart


def test_memory_sizes():
    assert parse_memory_size('512MiB') == 512 * MiB and parse_memory_size('4G') == 4 * 2**30
    assert parse_memory_size('1.5GiB') == 3 * 2**29 and parse_memory_size(3000000000) == 3000000000
    assert parse_memory_size('64kb') == 64 * 1024
    for bad in ('lots', '0', '-1G', 'iB', '4 GB extra'):
        with pytest.raises(MemoryBudgetError, match='memory budget'):
            parse_memory_size(bad)


PEAK_OF_ONE_ENHANCEMENT = """
import json, sys
import numpy as np
from sclle_basicsr.benchmarks.memory import PeakRSS
from sclle_basicsr.inference import Enhancer
enh = Enhancer(sys.argv[1], device='cpu', backend='torch', memory_budget=sys.argv[2])
img = np.random.default_rng(0).integers(0, 90, (1000, 1500, 3), dtype=np.uint8)
with PeakRSS() as rss:
    enh.enhance(img)
print(json.dumps({'working_mib': (rss.peak - rss.start) / 2**20}))
"""


def test_the_budget_bounds_the_peak_memory(model_path):
    """A 1.5 MP image (untiled: about 1.7 GB for the pass) under a 160 MiB budget, in a fresh process."""
    proc = subprocess.run([sys.executable, '-c', PEAK_OF_ONE_ENHANCEMENT, model_path, '160MiB'], capture_output=True,
                          text=True, timeout=600, env=dict(os.environ, OMP_NUM_THREADS='2'))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])['working_mib'] <= 160


def run_cli(args):
    return main([str(a) for a in args] + ['--quiet'])


def test_cli_tiles_from_its_budget_and_tile_0_keeps_the_whole_image(model_path, tmp_path, tiles_used, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    Image.fromarray(low_light(600, 800)).save(src / 'a.png')
    common = ['-i', src, '--model_path', model_path, '--device', 'cpu', '--backend', 'torch']
    assert run_cli(common + ['-o', tmp_path / 'whole', '--tile', '0', '--memory_budget', '1MiB']) == 0
    assert run_cli(common + ['-o', tmp_path / 'auto', '--memory_budget', '160MiB']) == 0
    assert tiles_used[0] == 0 and 64 <= tiles_used[1] < 600
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'whole' / 'a.png')),
                          np.asarray(Image.open(tmp_path / 'auto' / 'a.png')))
    capsys.readouterr()
    assert run_cli(common + ['-o', tmp_path / 'tiny', '--memory_budget', '1MiB']) == 1
    assert 'a memory budget of 1 MiB is too small for a 800x600 image' in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        run_cli(common + ['-o', tmp_path / 'x', '--memory_budget', 'lots'])
    assert stop.value.code == 2 and "memory budget 'lots'" in capsys.readouterr().err
