"""The training loop's prefetchers close what they open: after reset() and close() no reader thread and no data
worker process is left, the batches are BasicSR's, and a worker's error reaches the loop instead of hanging it.

Run by tests/test_prefetchers.py in a fresh interpreter: they count the process's threads and child processes, and
fork data workers from a reader thread, which after the rest of the suite (its runtimes' thread pools) crashed the
whole pytest process once (SIGSEGV), so they run where nothing else has run first."""
import multiprocessing
import threading

import pytest
import torch
from basicsr.data.prefetch_dataloader import CPUPrefetcher, PrefetchDataLoader
from torch.utils.data import DataLoader, Dataset

from sclle_basicsr.runner.prefetchers import ClosingCPUPrefetcher, close_all


class Numbers(Dataset):

    def __init__(self, fail_at=None):
        self.fail_at = fail_at

    def __len__(self):
        return 12

    def __getitem__(self, index):
        if index == self.fail_at:
            raise ValueError(f'item {index} is broken')
        return torch.full((3, 4, 4), float(index))


def loader(kind, **kwargs):
    args = dict(dataset=Numbers(**kwargs), batch_size=2, num_workers=2, shuffle=False)
    return PrefetchDataLoader(num_prefetch_queue=1, **args) if kind == 'prefetch' else DataLoader(**args)


def readers():
    return [t for t in threading.enumerate() if t.name == 'sclle-prefetch' and t.is_alive()]


def values(batch):
    return batch[:, 0, 0, 0].tolist()


def read_epochs(prefetcher, takes):
    """Reset then take ``n`` batches, per epoch: the way BasicSR's loop leaves an epoch early (total_iter reached)."""
    seen = []
    for n in takes:
        prefetcher.reset()
        seen.append([values(prefetcher.next()) for _ in range(n)])
    return seen


@pytest.mark.parametrize('kind', ['prefetch', 'plain'])
def test_reset_and_close_leave_no_thread_and_no_worker(kind):
    """BasicSR's CPUPrefetcher leaves each unfinished iterator running: with prefetch_mode cpu, a reader thread
    blocked on its full queue keeps the iterator's two workers alive until the interpreter exits."""
    assert not multiprocessing.active_children()
    prefetcher = ClosingCPUPrefetcher(loader(kind))
    assert not multiprocessing.active_children()  # nothing is started before the first reset / next
    seen = read_epochs(prefetcher, [1, 2, 1])
    assert len(multiprocessing.active_children()) == 2  # the current epoch's workers only
    prefetcher.close()
    assert not readers() and not multiprocessing.active_children()
    assert seen == [[[0, 1]], [[0, 1], [2, 3]], [[0, 1]]]
    # the same batches as BasicSR's (workers-free here: BasicSR's would leave threads and workers behind)
    reference = CPUPrefetcher(DataLoader(Numbers(), batch_size=2, shuffle=False))
    assert read_epochs(reference, [1, 2, 1]) == seen


def test_a_whole_epoch_then_none_as_basicsr():
    prefetcher = ClosingCPUPrefetcher(loader('prefetch'))
    prefetcher.reset()
    batches = []
    while (batch := prefetcher.next()) is not None:
        batches.append(values(batch))
    assert batches == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]] and prefetcher.delivered == 6
    prefetcher.close()
    assert not readers()


def test_a_workers_error_reaches_the_loop():
    """BasicSR's PrefetchGenerator thread dies with the error and its reader waits forever on the empty queue."""
    prefetcher = ClosingCPUPrefetcher(loader('prefetch', fail_at=5))
    prefetcher.reset()
    with pytest.raises(ValueError, match='item 5 is broken'):
        for _ in range(6):
            prefetcher.next()
    prefetcher.close()
    assert not readers() and not multiprocessing.active_children()


def test_what_is_still_open_at_exit_is_closed():
    prefetcher = ClosingCPUPrefetcher(loader('prefetch'))
    prefetcher.reset()
    prefetcher.next()
    del prefetcher  # a run that returned: only the reader thread still holds the iterator
    assert readers()
    close_all()
    assert not readers() and not multiprocessing.active_children()
