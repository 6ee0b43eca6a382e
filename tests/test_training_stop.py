"""The stop on SIGINT / SIGTERM, step by step: the first signal asks, the next batch saves and exits, a second
signal or one after the last iteration exits at once (the end-to-end runs are in test_fault_injection_training)."""
import signal

import pytest

from sclle_basicsr.runner.training_stop import STOP_SIGNALS, TrainingStop


class Model:

    def __init__(self):
        self.saved = []

    def save(self, epoch, current_iter):
        self.saved.append((epoch, current_iter))


class Prefetcher:

    def __init__(self, delivered, epoch):
        self.delivered, self.epoch, self.closed = delivered, epoch, False

    def close(self):
        self.closed = True


@pytest.fixture
def stop(tmp_path):
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    stop = TrainingStop()
    stop.install({'train': {'total_iter': 10}, 'rank': 0,
                  'path': {'training_states': str(tmp_path), 'models': str(tmp_path / 'models')}})
    stop.model = Model()
    yield stop
    for s, handler in previous.items():
        signal.signal(s, handler)


def test_the_first_signal_only_asks(stop, capfd):
    prefetcher = Prefetcher(4, 1)
    stop.before_batch(prefetcher)  # nothing asked: nothing happens
    signal.raise_signal(signal.SIGTERM)
    assert 'SIGTERM received: finishing the current iteration' in capfd.readouterr().err
    assert stop.model.saved == [] and not prefetcher.closed


def test_the_next_batch_saves_the_last_iteration_and_exits(stop, tmp_path):
    stop.start_iter = 2  # resumed from iteration 2, then 5 batches trained
    signal.raise_signal(signal.SIGINT)
    prefetcher = Prefetcher(5, 2)
    with pytest.raises(SystemExit) as exit_:
        stop.before_batch(prefetcher)
    assert exit_.value.code == 130 and prefetcher.closed and stop.model.saved == [(2, 7)]


def test_nothing_is_saved_twice_or_before_the_first_iteration(stop, tmp_path):
    (tmp_path / '6.state').write_bytes(b'the periodic save of this iteration')
    signal.raise_signal(signal.SIGTERM)
    for delivered in (6, 0):
        with pytest.raises(SystemExit):
            stop.before_batch(Prefetcher(delivered, 1))
    assert stop.model.saved == []


def test_a_second_signal_stops_at_once(stop, capfd):
    stop.prefetcher = Prefetcher(3, 0)
    signal.raise_signal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exit_:
        signal.raise_signal(signal.SIGINT)
    assert exit_.value.code == 130 and 'stopped at once by SIGINT, a second stop signal, without saving' in \
        capfd.readouterr().err
    assert stop.model.saved == []


def test_a_signal_after_the_last_iteration_stops_at_once(stop, capfd):
    stop.prefetcher = Prefetcher(11, 3)  # the batch that ended the loop (total_iter 10) was handed out
    with pytest.raises(SystemExit) as exit_:
        signal.raise_signal(signal.SIGTERM)
    assert exit_.value.code == 143
    assert 'stopped at once by SIGTERM, during the final save and validation, after the last iteration, without ' \
        'saving' in capfd.readouterr().err
