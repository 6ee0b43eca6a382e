"""Keep the calling thread's alternate signal stack across OpenVINO model compilation.

OpenVINO's CPU plugin (2026.4) installs an alternate signal stack of its own on the thread that compiles a model and
puts back the one it found when that model is released.  Models released in another order than the reverse of
their creation (garbage collection decides) leave the thread on a stack that was freed, and the next signal whose
handler runs on the alternate stack (every Python-level handler: CPython installs them with ``SA_ONSTACK``) kills
the process with SIGSEGV instead of stopping it cleanly (``tests/test_signal_stack.py`` shows it).  Putting the
thread's own stack back right after compiling keeps every release consistent: each model then restores the stack the
thread had.
"""
import contextlib
import ctypes
import ctypes.util
import sys


class _StackT(ctypes.Structure):
    _fields_ = [('ss_sp', ctypes.c_void_p), ('ss_flags', ctypes.c_int), ('ss_size', ctypes.c_size_t)]


def _libc():
    if not sys.platform.startswith('linux'):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library('c') or None, use_errno=True)
    return libc if hasattr(libc, 'sigaltstack') else None


_LIBC = _libc()


def current_signal_stack():
    """``(address, flags, size)`` of this thread's alternate signal stack, or ``None`` where it cannot be read."""
    if _LIBC is None:
        return None
    stack = _StackT()
    if _LIBC.sigaltstack(None, ctypes.byref(stack)) != 0:
        return None
    return stack.ss_sp or 0, stack.ss_flags, stack.ss_size


@contextlib.contextmanager
def keep_signal_stack():
    """Run the block, then give this thread back the alternate signal stack it had before (Linux; elsewhere a no-op)."""
    if _LIBC is None:
        yield
        return
    saved = _StackT()
    if _LIBC.sigaltstack(None, ctypes.byref(saved)) != 0:
        yield
        return
    try:
        yield
    finally:
        now = _StackT()
        _LIBC.sigaltstack(None, ctypes.byref(now))
        if (now.ss_sp, now.ss_size, now.ss_flags) != (saved.ss_sp, saved.ss_size, saved.ss_flags):
            saved.ss_flags &= ~1  # SS_ONSTACK is reported, never set
            if _LIBC.sigaltstack(ctypes.byref(saved), None) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f'cannot restore the alternate signal stack after OpenVINO compiled a model: '
                                   f'sigaltstack failed ({err})')
