"""Fault injection: real training runs (``sclle_basicsr/train.py``, one data worker) killed with SIGKILL at seeded
random points, while saving included, then resumed with ``--auto_resume`` until they finish.

Checks what the README promises: after every kill, each training state and checkpoint under its final name loads
(a kill leaves at most a temporary file, which the next ``--auto_resume`` removes, and a stale lock file, which it
takes over); the finished run logged, at every iteration, the losses of an uninterrupted run and ends with its
weights, bit for bit.

Then the faults a user meets through train.py: a second run under one name, SIGTERM and Ctrl-C, a full disk,
mistyped options, and what prefetch_mode cpu leaves running at exit.
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

from sclle_basicsr.runner.run_lock import lock_path
from sclle_basicsr.utils.assets import REPO_ROOT
from sclle_basicsr.utils.atomic_files import is_temporary

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


# ------------------------------------------------------------------ the audit's faults, through train.py

def start(run, total_iter, *extra, workers=0, prefetch='~', save_freq=100, cmd=None, new_session=False):
    opt_file = run.write_options(total_iter, workers=workers, prefetch=prefetch, save_freq=save_freq)
    cmd = cmd or [sys.executable, 'sclle_basicsr/train.py']
    return subprocess.Popen([*cmd, '-opt', str(opt_file), *extra], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=new_session)


def wait_for_iteration(run, proc, it, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(rf'iter:\s*{it},', run.log()):
            return
        assert proc.poll() is None, f'the run ended before iteration {it}: {proc.communicate()[1][-3000:]}'
        time.sleep(0.05)
    raise AssertionError(f'no iteration {it} in {timeout} s')


def finish(proc, timeout=300):
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def assert_continues_exactly(run, whole, total_iter):
    """Every iteration the legs logged has the uninterrupted run's losses; the final weights are its weights."""
    expected = whole.losses()
    logged = all_losses(run)
    assert {it for it, _ in logged} == set(range(1, total_iter + 1))
    for it, line in logged:
        assert line == expected[it], f'iteration {it}: {line} != {expected[it]}'
    for key in ('params', 'params_ema'):
        for name, value in whole.weights('latest')[key].items():
            assert torch.equal(run.weights('latest')[key][name], value), (key, name)


STOP_TOTAL = 12


@pytest.mark.parametrize('signum, workers, prefetch', [(signal.SIGTERM, 0, '~'), (signal.SIGINT, 2, 'cpu')],
                         ids=['SIGTERM', 'SIGINT-to-the-group-2-workers-prefetch-cpu'])
def test_a_signal_saves_a_state_and_the_run_continues_exactly(run_factory, signum, workers, prefetch):  # noqa: F811
    """SIGTERM (to the process) or Ctrl-C (SIGINT to the whole process group, data workers included): the iteration
    ends, its state and networks are saved (no periodic save in this run), the process exits 128 + signal with a
    message and no traceback; --auto_resume then continues exactly.  While the first run trains, a second run under
    the same name is refused and archives nothing."""
    whole = run_factory()
    whole.train(STOP_TOTAL, save_freq=100)
    run = run_factory()
    proc = start(run, STOP_TOTAL, workers=workers, prefetch=prefetch, new_session=True)
    wait_for_iteration(run, proc, 3)
    if signum == signal.SIGTERM:
        proc.send_signal(signal.SIGSTOP)  # the first run holds its folder (and does not finish) meanwhile
        second = start(run, STOP_TOTAL)
        code, _, stderr = finish(second)
        assert code == 1 and stderr.strip().splitlines()[-1] == (
            f'train.py: error: {run.root} is in use by another training run (process {proc.pid}, lock '
            f'{lock_path(run.root)}): wait for it to end or stop it, or give this training run another name '
            '(option name)'), stderr[-2000:]
        assert 'Traceback' not in stderr
        assert not glob.glob(run.root + '_archived_*')  # BasicSR would have renamed the first run's folder
        proc.send_signal(signum)
        proc.send_signal(signal.SIGCONT)
    else:
        os.killpg(proc.pid, signum)  # what Ctrl-C in a terminal does
    code, _, stderr = finish(proc)
    name = signal.Signals(signum).name
    assert code == 128 + signum, stderr[-3000:]
    assert 'Traceback' not in stderr and f'sclle_basicsr: {name} received: finishing the current iteration' in stderr
    stopped = re.search(rf'stopped by {name} after iteration (\d+): saved (\S+) and its networks in (\S+); rerun with '
                        '--auto_resume to continue exactly', stderr)
    assert stopped, stderr[-3000:]
    it = int(stopped.group(1))
    assert 3 <= it < STOP_TOTAL and stopped.group(2) == osp.join(run.root, 'training_states', f'{it}.state')
    assert osp.isfile(osp.join(run.root, 'models', f'net_g_{it}.pth')) and not osp.exists(lock_path(run.root))
    state = torch.load(stopped.group(2), map_location='cpu', weights_only=False)
    assert state['iter'] == it and state['batch'] == {'batch_size': 2, 'world_size': 1}

    code, _, stderr = finish(start(run, STOP_TOTAL, '--auto_resume', workers=workers, prefetch=prefetch))
    assert code == 0, stderr[-3000:]
    assert f'Resuming training from epoch: {state["epoch"]}, iter: {it}.' in run.log()
    assert_continues_exactly(run, whole, STOP_TOTAL)


# Runs train.py with writes of the temporary file of one save (named by argv[1]) failing as on a full disk.
DISK_FULL_AT = """
import errno, os, runpy, sys
target = '.' + sys.argv.pop(1) + '.sclle-tmp-'
real_fdopen = os.fdopen

class DiskFull:
    def __init__(self, f):
        self.f = f
    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
    def __getattr__(self, name):
        return getattr(self.f, name)

def fdopen(fd, *args, **kwargs):
    f = real_fdopen(fd, *args, **kwargs)
    try:
        written = os.path.basename(os.readlink(f'/proc/self/fd/{fd}'))
    except OSError:
        return f
    return DiskFull(f) if written.startswith(target) else f

os.fdopen = fdopen
sys.argv[0] = 'sclle_basicsr/train.py'
runpy.run_path(sys.argv[0], run_name='__main__')
"""


@pytest.mark.skipif(not osp.isdir('/proc/self/fd'), reason='the fault is injected by file name through /proc')
@pytest.mark.parametrize('failing', ['net_g_latest.pth', '4.state'])
def test_a_full_disk_stops_the_run_saying_no_space_left(run_factory, failing):  # noqa: F811
    """BasicSR logs "unexpected pos" and trains on: the run ended with status 0 and without net_g_latest.pth."""
    run = run_factory()
    code, _, stderr = finish(start(run, 4, save_freq=2, cmd=[sys.executable, '-c', DISK_FULL_AT, failing]))
    folder = osp.join(run.root, 'models' if failing.endswith('.pth') else 'training_states')
    assert code == 1, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == (
        f'train.py: error: cannot save {osp.join(folder, failing)}: No space left on device (free space on {folder}); '
        'nothing was overwritten; --auto_resume continues from the newest saved training state once the cause is '
        'fixed'), stderr[-3000:]
    assert 'Traceback' not in stderr and 'No space left on device' in run.log()
    assert not osp.exists(osp.join(folder, failing))
    assert not [path for path in saved_files(run) if is_temporary(os.path.basename(path))]
    for path in saved_files(run):  # what was saved before is whole
        torch.load(path, map_location='cpu', weights_only=path.endswith('.pth'))
    assert osp.isfile(osp.join(run.root, 'training_states', '2.state'))


def test_mistyped_options_are_one_error_before_anything_is_made(run_factory):  # noqa: F811
    run = run_factory()
    os.makedirs(run.root)
    with open(osp.join(run.root, 'keep.txt'), 'w') as f:
        f.write('an earlier run of this name')
    opt_file = run.write_options(4)
    text = opt_file.read_text().replace('crop_size: 32', 'crop_sise: 32')
    opt_file.write_text(text.replace('{type: SCLContrastiveLoss}', '{type: SCLContrastiveLoss, loss_weight: 1e-3}'))
    proc = subprocess.run([sys.executable, 'sclle_basicsr/train.py', '-opt', str(opt_file), '--force_yml',
                           'train:totl_iter=2'], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f'train.py: error: {opt_file}: datasets.train.crop_sise: unknown option of UnpairedContrastiveDataset (did '
        'you mean crop_size?); train.totl_iter: unknown option of SCLLLEModel (train:) (did you mean total_iter?); '
        "train.contrastive_opt.loss_weight: SCLContrastiveLoss expects a number, got the string '1e-3' (YAML reads a "
        'number without a dot, such as 1e-3, as a string: write 1.0e-3)')
    assert os.listdir(run.root) == ['keep.txt'] and not glob.glob(run.root + '_archived_*')  # nothing touched


# Runs train.py and, after every exit handler of the plugin (registered later, so run earlier) and before
# multiprocessing's (registered earlier) terminates what is left, reports the reader threads and worker processes
# still alive.
AT_EXIT_PROBE = """
import atexit, multiprocessing.util, runpy, sys, threading

def probe():
    import multiprocessing
    from basicsr.data.prefetch_dataloader import PrefetchGenerator
    alive = [t for t in threading.enumerate() if isinstance(t, PrefetchGenerator) or t.name == 'sclle-prefetch']
    print(f'probe: {len(alive)} reader thread(s), {len(multiprocessing.active_children())} worker(s)', flush=True)

atexit.register(probe)
sys.argv[0] = 'sclle_basicsr/train.py'
runpy.run_path(sys.argv[0], run_name='__main__')
"""


def test_prefetch_cpu_with_workers_leaves_nothing_running_at_exit(run_factory):  # noqa: F811
    """prefetch_mode cpu with two workers, stopping mid-epoch: BasicSR's prefetcher leaves its reader threads (that
    of the iterator built before the first epoch, never read, and that of the last epoch) and their workers to the
    interpreter's exit (this probe counts 3 and 4 with it), where 1 run in 5 aborted (status 134).  Here they are
    closed before multiprocessing's exit handler runs."""
    run = run_factory()
    code, stdout, stderr = finish(start(run, 4, workers=2, prefetch='cpu', save_freq=2,
                                        cmd=[sys.executable, '-c', AT_EXIT_PROBE]))
    assert code == 0, stderr[-3000:]
    assert 'probe: 0 reader thread(s), 0 worker(s)' in stdout, stdout[-2000:]


def test_sigterm_under_ddp_stops_every_rank_after_the_same_iteration(run_factory):  # noqa: F811
    """torch.distributed.run passes SIGTERM to both ranks; they agree (an all-reduce before each batch) and stop
    after the same iteration, rank 0 saving.  The state records two processes, so resuming it in one is refused."""
    run = run_factory()
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29537',
                'sclle_basicsr/train.py']
    proc = start(run, 200, '--launcher', 'pytorch', cmd=launcher)
    wait_for_iteration(run, proc, 3)
    proc.send_signal(signal.SIGTERM)
    _, _, stderr = finish(proc)  # the launcher reports the signal its own way (its traceback, status 1)
    assert stderr.count('sclle_basicsr: SIGTERM received: finishing the current iteration') == 2, stderr[-3000:]
    stopped = re.search(r'stopped by SIGTERM after iteration (\d+): saved (\S+) ', run.log())
    assert stopped, run.log()[-3000:]
    state = torch.load(stopped.group(2), map_location='cpu', weights_only=False)
    assert state['iter'] == int(stopped.group(1)) and state['batch'] == {'batch_size': 2, 'world_size': 2}
    assert osp.isfile(osp.join(run.root, 'models', f'net_g_{state["iter"]}.pth'))
    code, _, stderr = finish(start(run, 200, '--auto_resume'))
    assert code == 1 and 'these options give 2 and 1 (datasets.train.batch_size_per_gpu, number of processes)' in \
        stderr.strip().splitlines()[-1], stderr[-3000:]
