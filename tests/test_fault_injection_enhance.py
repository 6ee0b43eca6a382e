"""Real ``sclle-enhance`` runs killed at seeded random points (SIGKILL, SIGINT, SIGTERM), then checked for what the
README promises: no partial image under a final name, and a rerun removes the temporaries and completes exactly."""
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.inference import Enhancer
from sclle_basicsr.utils.atomic_files import is_temporary

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
NUM_IMAGES = 14


@pytest.fixture(scope='module')
def workload(tmp_path_factory):
    """A model, a folder of NUM_IMAGES photos-like PNGs and the exact expected outputs."""
    root = tmp_path_factory.mktemp('fault_injection')
    torch.manual_seed(0)
    net = DCENet()
    with torch.no_grad():
        net.e_conv7.weight.mul_(4)
    model = root / 'net_g.pth'
    torch.save({'params': net.state_dict()}, model)
    src = root / 'in'
    src.mkdir()
    rng = np.random.default_rng(0)
    enhancer = Enhancer(str(model), device='cpu')
    expected = {}
    for i in range(NUM_IMAGES):
        # smooth gradients plus noise: PNGs of realistic size, so encoding and writing take measurable time
        yy, xx = np.mgrid[0:360, 0:480]
        base = (40 + 30 * np.sin(xx / (20 + 3 * i)) + 20 * np.cos(yy / 17))[..., None] * [1.0, 0.8, 0.6]
        img = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(src / f'{i:02d}.png')
        expected[f'{i:02d}.png'] = enhancer.enhance(img)
    return str(model), src, expected


def start(model, src, out, *extra):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    cmd = [sys.executable, '-m', 'sclle_basicsr.enhance', '-i', str(src), '-o', str(out), '--model_path', model,
           '--quiet', *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def final_names(out):
    return sorted(n for n in os.listdir(out) if not n.startswith('.')) if osp.isdir(out) else []


def temporaries(out):
    return sorted(n for n in os.listdir(out) if is_temporary(n)) if osp.isdir(out) else []


def wait_for(predicate, proc, timeout=120):
    """Poll ``predicate`` until true, the process ends, or ``timeout``; returns whether it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return predicate()
        time.sleep(0.001)
    raise AssertionError(f'nothing happened in {timeout} s')


def assert_outputs_whole(out, expected):
    """Every file under a final name decodes completely to the exact expected enhancement."""
    for name in final_names(out):
        with Image.open(osp.join(out, name)) as img:
            pixels = np.asarray(img)  # a truncated PNG raises here
        assert np.array_equal(pixels, expected[name]), f'{name} differs from the expected enhancement'


def finish_with_rerun(model, src, out, expected, leftovers):
    """A rerun with --skip_existing removes the ``leftovers`` (temporaries of killed runs) and completes exactly."""
    proc = start(model, src, out, '--skip_existing')
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout + stderr
    for name in leftovers:
        assert f'removed {osp.join(out, name)} (temporary file of an interrupted run)' in stderr
    assert temporaries(out) == []
    assert final_names(out) == sorted(expected)
    assert_outputs_whole(out, expected)


def kill_at(proc, out, rng, min_new, signum, at_temporary=False):
    """Send ``signum`` once ``min_new`` more outputs exist, plus a random delay or (``at_temporary``) as soon as a
    temporary file shows up: mid-write."""
    first = len(final_names(out))
    if at_temporary:
        wait_for(lambda: len(final_names(out)) >= first + min_new and bool(temporaries(out)), proc)
    else:
        wait_for(lambda: len(final_names(out)) >= first + min_new, proc)
        time.sleep(float(rng.uniform(0, 0.3)))
    proc.send_signal(signum)


def test_sigkill_at_random_points_then_resume(tmp_path, workload):
    """Three runs killed with SIGKILL (two of them mid-write), each resumed by the next with --skip_existing."""
    model, src, expected = workload
    rng = np.random.default_rng(0)
    out = tmp_path / 'out'
    leftovers, killed_mid_write = [], 0
    for step in range(3):
        proc = start(model, src, out, '--skip_existing')
        kill_at(proc, out, rng, int(rng.integers(1, 3)), signal.SIGKILL, at_temporary=step > 0)
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, 'the run ended before the kill: make the workload larger'
        for name in leftovers:  # the previous run's temporaries were removed by this one
            assert f'removed {osp.join(out, name)} (temporary file of an interrupted run)' in stderr
        assert_outputs_whole(out, expected)
        leftovers = temporaries(out)
        killed_mid_write += bool(leftovers)
    assert len(final_names(out)) < NUM_IMAGES
    finish_with_rerun(model, src, out, expected, leftovers)
    # a write takes milliseconds (data, fsync, rename): the kills sent while a temporary existed land mid-write
    assert killed_mid_write, 'no SIGKILL landed mid-write (no temporary file left behind)'


def test_sigint_and_sigterm_stop_cleanly_with_summary(tmp_path, workload):
    """A run stopped by SIGINT, the next (resuming) by SIGTERM: exit 130 / 143, the summary, no temporary left."""
    model, src, expected = workload
    rng = np.random.default_rng(1)
    out = tmp_path / 'out'
    for signum in (signal.SIGINT, signal.SIGTERM):
        before = len(final_names(out))
        proc = start(model, src, out, '--skip_existing')
        # the first output marks a run under way (a signal during Python's start-up gets Python's default handling)
        kill_at(proc, out, rng, int(rng.integers(1, 3)), signum)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signum, stdout + stderr
        name = signal.Signals(signum).name
        assert (f'sclle-enhance: stopped by {name}: {len(final_names(out)) - before} of {NUM_IMAGES} image(s) '
                f'written, 0 failed, {before} existing output(s) kept') in stdout
        assert 'Traceback' not in stderr
        assert temporaries(out) == []
        assert_outputs_whole(out, expected)
    finish_with_rerun(model, src, out, expected, [])


def written_count(stdout):
    found = re.search(r'sclle-enhance: (\d+) image\(s\) written', stdout)
    assert found, stdout
    return int(found.group(1))


def test_two_runs_into_one_folder_write_each_file_once(tmp_path, workload):
    """Two runs started together on one -o with --skip_existing (the way to share or resume work): each output is
    published by exactly one of them (the written counts add up to the number of images; before, both wrote every
    file), every file is the exact enhancement, no temporary is left, both exit 0.  (Without --skip_existing an
    output the other run created meanwhile is a failure naming it: tests/test_enhance_cli.py.)"""
    model, src, expected = workload
    out = tmp_path / 'out'
    procs = [start(model, src, out, '--skip_existing') for _ in range(2)]
    results = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], results
    assert sum(written_count(stdout) for stdout, _ in results) == NUM_IMAGES, results
    assert final_names(out) == sorted(expected) and temporaries(out) == []
    assert_outputs_whole(out, expected)
