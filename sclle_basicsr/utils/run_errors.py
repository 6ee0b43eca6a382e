"""Errors that BasicSR's runners report as one line instead of a traceback.

A :class:`RunError` is a fault of the run's options or surroundings (a mistyped option, a folder another run holds,
a full disk) whose message already names the file or option and what to do; a traceback would only bury it.
:func:`install_one_line_errors` (called by :func:`~sclle_basicsr.runner.basicsr_runner.prepare_basicsr_runner`) prints
such an error as ``<prog>: error: <message>``, also into BasicSR's log when it has one, and the process exits with
status 1.  Every other exception keeps Python's traceback.
"""
import logging
import os.path as osp
import sys


class RunError(Exception):
    """A fault whose message names the file or option and says what to do (printed without a traceback)."""


def _report(prog, err):
    logger = logging.getLogger('basicsr')
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 0, str(err), None, None)
    for handler in logger.handlers:
        if isinstance(handler, logging.FileHandler):  # the run's log file (its console handler would say it twice)
            handler.handle(record)
    print(f'{prog}: error: {err}', file=sys.stderr, flush=True)


def install_one_line_errors(prog=None):
    """Make an uncaught :class:`RunError` end the process with one line on stderr (idempotent)."""
    if getattr(sys.excepthook, 'reports_run_errors', False):
        return
    prog = prog or osp.basename(sys.argv[0] or 'python')
    previous = sys.excepthook

    def hook(kind, err, tb):
        if isinstance(err, RunError):
            _report(prog, err)
        else:
            previous(kind, err, tb)

    hook.reports_run_errors = True
    sys.excepthook = hook
