"""SIGINT and SIGTERM as an exception, so that a stopped run abandons one image cleanly and still reports."""
import contextlib
import signal
import threading


class Interrupted(BaseException):
    """SIGINT or SIGTERM during a run (a ``BaseException``: the per-image error handling must not swallow it)."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals(signums=(signal.SIGINT, signal.SIGTERM)):
    """Raise :class:`Interrupted` on the first of ``signums`` and ignore repeats while the run winds down.

    The exception aborts the image in progress wherever it is (its temporary file is removed by
    :func:`~sclle_basicsr.utils.atomic_files.atomic_open`); the previous handlers are restored on exit.  Outside the
    main thread (where Python cannot install handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        for s in signums:
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in signums}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
