"""Peak resident memory, of a block of code (:class:`PeakRSS`) or of the whole process (:func:`process_peak_rss_kib`).

Both read ``/proc``: ``ru_maxrss`` would report a forked parent's peak in a fresh child.
"""
import os
import threading


class PeakRSS:
    """Peak resident set size (bytes) while the block runs, sampled from /proc/self/statm."""

    def __init__(self, interval=0.002):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096

    def _rss(self):
        try:
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * self._page
        except OSError:
            return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        malloc_trim()
        self.start = self._rss()
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        return False


def malloc_trim():
    """Hand freed heap memory back to the OS (glibc) so that each measured block's peak starts from a clean RSS."""
    try:
        import ctypes
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def status_kib(field):
    """A field of /proc/self/status in KiB, e.g. ``VmRSS`` (current resident size) or ``VmHWM`` (peak)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def process_peak_rss_kib():
    """This process's peak RSS in KiB (VmHWM: it starts afresh at exec, unlike ``ru_maxrss``)."""
    return status_kib('VmHWM')
