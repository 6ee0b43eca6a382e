"""Files that land whole or not at all: written to a temporary file in the same folder, then ``os.replace``d (or,
with ``replace=False``, hard-linked under the final name, which fails if that name exists: of two processes
publishing one path, exactly one succeeds and the other gets ``FileExistsError``).

Temporaries are named ``.<final name>.sclle-tmp-<pid>-<random>``: a later run recognises the ones a killed process
left behind (their process is gone) and removes them, and never touches any other file.
"""
import contextlib
import errno
import os
import os.path as osp
import re
import tempfile

TEMPORARY_MARK = '.sclle-tmp-'
_TEMPORARY_NAME = re.compile(r'^\..+\.sclle-tmp-(?P<pid>\d+)-[a-z0-9_]+$')


def is_temporary(name):
    """Whether the file name ``name`` (no folder) is one of this module's temporaries."""
    return _TEMPORARY_NAME.match(name) is not None


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path, mode='wb', replace=True, **kwargs):
    """``open`` for writing whose file appears under ``path`` only when the block ends without an exception.

    The data is flushed and fsynced before the ``os.replace``; on any exception (``KeyboardInterrupt`` included)
    the temporary file is removed and ``path`` keeps its previous content.  ``replace=False`` never replaces an
    existing ``path``: :func:`publish_new` raises ``FileExistsError`` instead, even when another process creates
    ``path`` while this one writes.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open writes whole files: mode "w" or "wb", got "{mode}"')
    folder = osp.dirname(osp.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{osp.basename(path)}{TEMPORARY_MARK}{os.getpid()}-')
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
            yield f
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            publish_new(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def publish_new(tmp, path):
    """Give the whole file ``tmp`` the name ``path`` unless ``path`` exists (``FileExistsError``), atomically.

    A hard link fails when the name exists, so the check and the rename are one step.  On a filesystem without
    hard links the check comes just before an ``os.replace``, which leaves a window of microseconds.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, 'exists already (created by another process meanwhile?); not replaced',
                              path) from None
    except OSError as err:
        if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        if osp.lexists(path):
            raise FileExistsError(errno.EEXIST, 'exists already; not replaced', path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _fsync_folder(folder):
    """Make the rename itself durable (a power cut after ``os.replace`` could otherwise lose the new entry)."""
    if os.name != 'posix':  # folders cannot be opened for fsync on Windows; the rename is durable there
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data, replace=True):
    """Write ``data`` (bytes or str) to ``path`` through :func:`atomic_open` (``replace``: see there)."""
    with atomic_open(path, 'wb' if isinstance(data, (bytes, bytearray, memoryview)) else 'w', replace) as f:
        f.write(data)


def remove_stale_temporaries(folder):
    """Remove the temporaries under ``folder`` (recursively) whose writing process no longer runs.

    Returns the removed paths.  Temporaries of running processes (another run writing into the same folder) stay.
    """
    removed = []
    for root, _, files in os.walk(folder):
        for name in files:
            match = _TEMPORARY_NAME.match(name)
            if match and not _process_alive(int(match.group('pid'))):
                path = osp.join(root, name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    removed.append(path)
    return removed


def os_error_behind(err):
    """The ``OSError`` that ``err`` is or that caused it (``torch.save`` turns a failed write into a
    ``RuntimeError`` such as "unexpected pos", keeping the ``OSError`` only as its context), else ``None``."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, OSError) and err.errno is not None:
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def describe_os_error(err):
    """What went wrong writing, in words ("No space left on device", "Permission denied"), for ``err`` or the
    ``OSError`` behind it; ``str(err)`` when there is none."""
    found = os_error_behind(err)
    if found is None:
        return f'{type(err).__name__}: {err}'
    reason = found.strerror or os.strerror(found.errno)
    if found.filename:  # a temporary's name says less than its folder
        name = str(found.filename)
        reason += f' ({osp.dirname(name) if is_temporary(osp.basename(name)) else name})'
    return reason
