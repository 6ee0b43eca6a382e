"""The lock on a run's folder: a second holder is refused naming the folder and the process, the lock goes with its
process however it ends, and it sits beside the folder, where BasicSR's renaming of the folder cannot move it."""
import os
import signal
import subprocess
import sys

import pytest

from sclle_basicsr.runner.run_lock import FolderInUseError, FolderLock, lock_path

HOLD = """
import sys
from sclle_basicsr.runner.run_lock import hold_folder
hold_folder(sys.argv[1])
print('held', flush=True)
sys.stdin.readline()  # then a normal exit
"""


def holder(folder):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, '-c', HOLD, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline() == 'held\n'
    return proc


def test_a_second_holder_is_refused_naming_the_folder_and_the_process_until_it_exits(tmp_path):
    folder = tmp_path / 'experiments' / 'run'
    proc = holder(folder)
    try:
        with pytest.raises(FolderInUseError) as err:
            FolderLock(folder, 'training run').acquire()
        assert str(err.value) == (f'{folder} is in use by another training run (process {proc.pid}, lock '
                                  f'{lock_path(folder)}): wait for it to end or stop it, or give this training run '
                                  'another name (option name)')
    finally:
        proc.communicate('exit\n', timeout=60)
    assert proc.returncode == 0 and not os.path.exists(lock_path(folder))  # removed on a normal exit
    FolderLock(folder).acquire().release()


def test_a_killed_holder_leaves_a_stale_file_that_is_taken_over(tmp_path):
    folder = tmp_path / 'run'
    proc = holder(folder)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert lock_path(folder).endswith('.run.lock') and open(lock_path(folder)).read() == f'{proc.pid}\n'
    lock = FolderLock(folder).acquire()  # the kernel released the dead process's lock
    assert open(lock_path(folder)).read() == f'{os.getpid()}\n'
    lock.release()
    assert not os.path.exists(lock_path(folder))


def test_one_process_two_locks_refused_as_well(tmp_path):
    folder = tmp_path / 'run'
    first = FolderLock(folder).acquire()
    with pytest.raises(FolderInUseError):
        FolderLock(folder).acquire()
    first.release()
    FolderLock(folder).acquire().release()


def test_the_lock_is_beside_the_folder_so_renaming_the_folder_keeps_it(tmp_path):
    folder = tmp_path / 'run'
    folder.mkdir()
    lock = FolderLock(folder).acquire()
    os.rename(folder, tmp_path / 'run_archived')  # what BasicSR's mkdir_and_rename does to an existing folder
    folder.mkdir()
    with pytest.raises(FolderInUseError):
        FolderLock(folder).acquire()
    lock.release()


def test_the_test_runner_refuses_a_results_folder_in_use(tmp_path, monkeypatch):
    """test.py locks results/<name> before BasicSR would rename it (after checking the options)."""
    from sclle_basicsr.runner.run_guards import parse_test_options
    from sclle_basicsr.utils.assets import REPO_ROOT
    options = tmp_path / 'test.yml'
    options.write_text('name: pytest_lock_test\nmodel_type: SCLLLEModel\nnum_gpu: 0\nnetwork_g: {type: DCENet}\n'
                       'datasets:\n  test_1: {name: x, type: CheckedSingleImageDataset, dataroot_lq: /nowhere,'
                       ' io_backend: {type: disk}}\npath: {pretrain_network_g: ~}\nval: {save_img: false}\n')
    monkeypatch.setattr(sys, 'argv', ['test.py', '-opt', str(options)])
    results = os.path.join(REPO_ROOT, 'results', 'pytest_lock_test')
    other_run = FolderLock(results).acquire()
    try:
        with pytest.raises(FolderInUseError, match=f'^{results} is in use by another test run'):
            parse_test_options(REPO_ROOT)
    finally:
        other_run.release()
    opt, _ = parse_test_options(REPO_ROOT)  # free again: this process holds it until it exits
    assert opt['path']['results_root'] == results and os.path.exists(lock_path(results))
    assert not os.path.exists(results)  # nothing made yet: BasicSR's test_pipeline makes the folder
