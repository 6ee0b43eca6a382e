"""One run per experiment folder.

BasicSR's runners start a new run named like an existing folder by renaming that folder (``mkdir_and_rename``).  If
the folder's run is still going, it then writes its checkpoints into the new run's folder, and both lose work.  A
run therefore holds a lock on its folder from before BasicSR touches it until it exits: a second run with the same
name is refused with an error naming the folder and the process holding it.

The lock is an advisory ``flock`` on ``.<folder name>.lock`` beside the folder (not inside it: BasicSR renames the
folder).  The kernel releases it when its process ends, however it ends, so a crashed or killed run never blocks
the next one (``--auto_resume`` of a stopped run just takes it over); the lock file is removed on a normal exit.
"""
import atexit
import contextlib
import os
import os.path as osp

from sclle_basicsr.utils.run_errors import RunError

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None


class FolderInUseError(RunError):
    """Another running process holds the folder."""


def lock_path(folder):
    folder = osp.abspath(folder)
    return osp.join(osp.dirname(folder), f'.{osp.basename(folder)}.lock')


def _holder(path):
    with contextlib.suppress(OSError, ValueError):
        with open(path) as f:
            return int(f.read().strip())
    return None


class FolderLock:
    """An exclusive lock on ``folder`` for this process; :meth:`acquire` raises :class:`FolderInUseError`."""

    def __init__(self, folder, what='run'):
        self.folder, self.what = osp.abspath(folder), what
        self.path = lock_path(folder)
        self._fd = None

    def acquire(self):
        if fcntl is None:
            raise RuntimeError(f'cannot lock {self.folder}: no fcntl on this platform')
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                pid = _holder(self.path)
                raise FolderInUseError(
                    f'{self.folder} is in use by another {self.what} (process {pid if pid else "unknown"}, lock '
                    f'{self.path}): wait for it to end or stop it, or give this {self.what} another name '
                    '(option name)') from None
            # the holder before us may have removed the file after we opened it: then our lock is on a dead inode
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()}\n'.encode())
        self._fd = fd
        return self

    def release(self):
        """Remove the lock file and unlock (removal first, while still holding it, so no one locks a dead file)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    @property
    def held(self):
        return self._fd is not None


def hold_folder(folder, what='run'):
    """Lock ``folder`` until this process exits; returns the :class:`FolderLock`."""
    lock = FolderLock(folder, what).acquire()
    atexit.register(lock.release)
    return lock
