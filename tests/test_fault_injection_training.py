"""Fault injection: real training runs (``sclle_basicsr/train.py``, one data worker) killed with SIGKILL at seeded
random points, while saving included, then resumed with ``--auto_resume`` until they finish.

Checks what the README promises: after every kill, each training state and checkpoint under its final name loads
(a kill leaves at most a temporary file, which the next ``--auto_resume`` removes); the finished run logged, at
every iteration, the losses of an uninterrupted run and ends with its weights, bit for bit.
"""
import glob
import os
import os.path as osp
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import torch
from test_train_pipeline import data, run_factory  # noqa: F401  (fixtures)

from sclle_basicsr.assets import REPO_ROOT
from sclle_basicsr.atomic_files import is_temporary

TOTAL_ITER = 6  # two 3-iteration epochs, a checkpoint and a state at every iteration

# Runs train.py, killing itself with SIGKILL at the N-th os.fsync: every save makes two (the temporary file before
# its rename, then the folder after it), so N picks a moment inside a save.
KILL_AT_FSYNC = """
import os, runpy, signal, sys
kill_at, calls, fsync = int(sys.argv.pop(1)), [0], os.fsync
def fsync_or_die(fd):
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    fsync(fd)
os.fsync = fsync_or_die
sys.argv[0] = 'sclle_basicsr/train.py'
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def newest_state(run):
    iters = [int(osp.basename(p)[:-len('.state')]) for p in glob.glob(osp.join(run.root, 'training_states', '*.state'))]
    return max(iters, default=0)


def draw_kill(kind, run, rng):
    """('time', s): SIGKILL s seconds after the leg logs 'Start training'.  ('file', N) / ('folder', N): die at the
    N-th fsync of the leg, the one of a file written but not yet renamed (odd N) or of its folder just after the
    rename (even N), among the saves still to come."""
    saves_left = 2 * (TOTAL_ITER - newest_state(run)) + 1  # a checkpoint and a state per iteration, then 'latest'
    if kind == 'file':
        return kind, 2 * rng.randint(1, saves_left) - 1
    if kind == 'folder':
        return kind, 2 * rng.randint(1, saves_left)
    return kind, rng.uniform(0.0, 1.0)


def start_leg(run, kill):
    opt_file = run.write_options(TOTAL_ITER, workers=1, save_freq=1)
    args = ['-opt', str(opt_file), '--auto_resume']
    if kill[0] in ('file', 'folder'):
        cmd = [sys.executable, '-c', KILL_AT_FSYNC, str(kill[1]), *args]
    else:
        cmd = [sys.executable, 'sclle_basicsr/train.py', *args]
    old_logs = set(glob.glob(osp.join(run.root, 'train_*.log')))
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if kill[0] == 'time':
        while proc.poll() is None and not any('Start training' in open(log).read()
                                              for log in set(glob.glob(osp.join(run.root, 'train_*.log'))) - old_logs):
            time.sleep(0.05)
        time.sleep(kill[1])
        proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate(timeout=600)
    return proc.returncode, stderr


def saved_files(run):
    """Every file in the run's training_states and models folders, temporary (hidden) ones included."""
    folders = [osp.join(run.root, name) for name in ('training_states', 'models')]
    return sorted(osp.join(f, name) for f in folders if osp.isdir(f) for name in os.listdir(f))


def all_losses(run):
    """[(iteration, loss line)] of every log of the run, repeats (iterations trained again after a kill) included."""
    return [(int(m.group(1)), m.group(2)) for m in re.finditer(r'iter:\s*(\d+),.*?\]\s*(l_con.*)', run.log())]


@pytest.mark.parametrize('seed', [2026])
def test_killed_runs_leave_whole_files_and_resume_exactly(run_factory, seed):  # noqa: F811
    rng = random.Random(seed)
    whole = run_factory()
    whole.train(TOTAL_ITER, workers=1, save_freq=1)
    expected = whole.losses()

    run = run_factory()
    kills = []
    for kind in ('time', 'file', 'folder', 'file', 'none'):
        kill = draw_kill(kind, run, rng)
        returncode, stderr = start_leg(run, kill)
        if kind == 'none':
            break
        assert returncode == -signal.SIGKILL, f'{kill}: train.py ended (exit {returncode}): {stderr[-3000:]}'
        partial = [path for path in saved_files(run) if is_temporary(os.path.basename(path))]
        kills.append((kill, newest_state(run), len(partial)))
        if kind == 'file':  # killed inside a save: the file being written is there, under its temporary name only
            assert partial, kills
        for path in set(saved_files(run)) - set(partial):  # nothing partial under a final name
            torch.load(path, map_location='cpu', weights_only=path.endswith('.pth'))
    assert returncode == 0, stderr[-3000:]
    assert not [path for path in saved_files(run) if is_temporary(os.path.basename(path))]  # --auto_resume removed them

    logged = all_losses(run)
    assert {it for it, _ in logged} == set(range(1, TOTAL_ITER + 1))
    for it, line in logged:
        assert line == expected[it], f'kills {kills}: iteration {it} logged {line}, uninterrupted {expected[it]}'
    for label in (TOTAL_ITER, 'latest'):
        for key in ('params', 'params_ema'):
            for name, value in whole.weights(label)[key].items():
                assert torch.equal(run.weights(label)[key][name], value), (kills, label, key, name)
