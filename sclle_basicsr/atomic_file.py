"""Files that land whole or not at all: a kill or a full disk never leaves a partial file under the final name."""
import os
import os.path as osp
import tempfile
from contextlib import contextmanager

PARTIAL_SUFFIX = '.partial'


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def open_atomic(path):
    """Binary file object whose content appears at ``path`` only when the block ends without an exception.

    It is written to ``.<name>.<random>.partial`` in the same folder, flushed to disk, then renamed with
    ``os.replace`` (atomic on POSIX and Windows); the folder entry is synced too, so the rename survives a power
    cut.  On an exception the temporary file is removed and ``path`` is left as it was.
    """
    folder = osp.dirname(osp.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f'.{osp.basename(path)}.', suffix=PARTIAL_SUFFIX)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, 'wb') as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    if os.name != 'posix':  # folders cannot be opened for fsync on Windows; the rename is durable there
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_partial_files(folder):
    """Remove the temporary files that writers killed inside :func:`open_atomic` left in ``folder``; return them.

    Only call it when nothing is writing there (e.g. when a run resumes): a temporary file is someone's work in
    progress until its writer is gone.
    """
    if not osp.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        if name.startswith('.') and name.endswith(PARTIAL_SUFFIX):
            try:
                os.unlink(osp.join(folder, name))
            except FileNotFoundError:
                continue
            removed.append(osp.join(folder, name))
    return removed
