"""Training-loop prefetchers that close what they open: no data workers or reader threads outlive an epoch or the run.

BasicSR's ``CPUPrefetcher`` starts an iterator when it is built and another at every ``reset()``, dropping the
previous one unfinished.  With ``prefetch_mode: cpu`` each iterator is a ``PrefetchGenerator`` thread blocked on its
full queue, which keeps its DataLoader iterator, and so its worker processes, alive for the rest of the run (the
first, never read, always; one more per epoch a run stops in).  At exit the interpreter then finalises while those
daemon threads still wait on worker processes that multiprocessing is terminating, which can abort the process
(status 134) after a run that trained and saved everything.  An error in a worker also never reaches the training
loop there: the thread dies and the loop waits forever on its queue.

:class:`ClosingCPUPrefetcher` is BasicSR's ``CPUPrefetcher`` (same ``next()`` / ``reset()`` and batches) that opens
its iterator on first use, closes the previous one on ``reset()`` (its reader thread stopped and joined, then its
workers shut down by the DataLoader itself), re-raises a worker's error in the training loop, and is closed at the
latest at interpreter exit, before multiprocessing tears the workers down.  ``prepare_basicsr_runner`` puts it in
``basicsr.train``.  Before each batch it calls ``before_batch`` (the graceful stop of :mod:`training_stop`).
"""
import atexit
import multiprocessing.util  # noqa: F401  (registers its exit handler, see close_all)
import queue
import threading
import weakref

import torch
from basicsr.data.prefetch_dataloader import CUDAPrefetcher, PrefetchDataLoader
from torch.utils.data import DataLoader

_PREFETCHERS = weakref.WeakSet()  # a prefetcher a failed run's traceback still holds is closed at exit
_READERS = set()  # a reader thread keeps running after its prefetcher is gone (the run returned): closed at exit
_END = object()


class _ReadAhead:
    """Up to ``depth`` batches of ``iterator`` read ahead by a thread that :meth:`close` stops and joins."""

    def __init__(self, iterator, depth):
        self._iterator, self._queue, self._stop = iterator, queue.Queue(max(1, depth)), threading.Event()
        self._thread = threading.Thread(target=self._run, name='sclle-prefetch', daemon=True)
        _READERS.add(self)
        self._thread.start()

    def _put(self, item):
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        try:
            for batch in self._iterator:
                if not self._put((batch, None)):
                    return
            self._put((_END, None))
        except BaseException as err:  # handed to the training loop, raised there
            # without this thread's frames: they hold the DataLoader iterator, whose workers would then outlive
            # close() for as long as the error is referenced (a worker's error carries its own traceback as text)
            self._put((_END, err.with_traceback(None)))

    def __next__(self):
        batch, err = self._queue.get()
        if err is not None:
            raise err
        if batch is _END:
            raise StopIteration
        return batch

    def close(self):
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)  # frees the slot a blocked put waits for
            except queue.Empty:
                pass
        self._thread.join()
        self._iterator = None  # the last reference: the DataLoader iterator shuts its workers down
        _READERS.discard(self)


def open_iterator(loader):
    """An iterator over ``loader`` that :func:`close_iterator` closes; BasicSR's ``PrefetchDataLoader`` is read
    ahead by a thread of ours (same batches and depth) instead of its own ``PrefetchGenerator``."""
    if isinstance(loader, PrefetchDataLoader):
        return _ReadAhead(DataLoader.__iter__(loader), loader.num_prefetch_queue)
    return iter(loader)


def close_iterator(iterator):
    if isinstance(iterator, _ReadAhead):
        iterator.close()
    # a DataLoader iterator shuts its workers down when its last reference goes, which the caller drops


class _Counting:
    """What the graceful stop needs of a prefetcher: ``delivered`` (batches handed out, each trained before the
    next ``next()``) and ``epoch`` (the sampler's epoch when the last one was handed out)."""

    before_batch = None  # callable(prefetcher) run before every batch is handed out (set by prepare_basicsr_runner)

    def _count(self, batch):
        if batch is not None:
            self.delivered += 1
            self.epoch = getattr(getattr(self._source, 'sampler', None), 'epoch', None)
        return batch

    def _before_batch(self):
        hook = type(self).before_batch
        if hook is not None:
            hook(self)


class ClosingCPUPrefetcher(_Counting):
    """``basicsr.data.prefetch_dataloader.CPUPrefetcher``, except that iterators are opened lazily and closed."""

    def __init__(self, loader):
        self.ori_loader = self._source = loader
        self.loader = None
        self.delivered, self.epoch = 0, None
        _PREFETCHERS.add(self)

    def next(self):
        self._before_batch()
        if self.loader is None:
            self.loader = open_iterator(self.ori_loader)
        try:
            return self._count(next(self.loader))
        except StopIteration:
            return None

    def reset(self):
        self.close()
        self.loader = open_iterator(self.ori_loader)

    def close(self):
        iterator, self.loader = self.loader, None
        if iterator is not None:
            close_iterator(iterator)


class StoppableCUDAPrefetcher(_Counting, CUDAPrefetcher):
    """BasicSR's ``CUDAPrefetcher`` (``prefetch_mode: cuda``) with the same ``before_batch`` call and counts (its
    plain DataLoader iterators need no closing: a dropped one shuts its workers down).

    It copies each batch to the GPU on a side stream while the previous step runs, lists of tensors too: BasicSR's
    copies tensors only, so the negatives (a list, one tensor per folder) would be copied synchronously by
    ``feed_data``."""

    def __init__(self, loader, opt):
        self._source, self.delivered, self.epoch = loader, 0, None
        super().__init__(loader, opt)

    def preload(self):
        super().preload()
        if self.batch is None:
            return
        with torch.cuda.stream(self.stream):
            for key, value in self.batch.items():
                if isinstance(value, (list, tuple)) and value and all(torch.is_tensor(v) for v in value):
                    self.batch[key] = [v.to(device=self.device, non_blocking=True) for v in value]

    def next(self):
        self._before_batch()
        return self._count(super().next())

    def close(self):
        self.loader = None


@atexit.register
def close_all():
    """Close every prefetcher and reader thread still open at exit.

    Exit handlers run last registered first: multiprocessing's, which terminates worker processes, was registered
    when it was imported above, so this one runs before it and the workers are shut down by their DataLoader.
    """
    for prefetcher in list(_PREFETCHERS):
        prefetcher.close()
    for reader in list(_READERS):
        reader.close()
