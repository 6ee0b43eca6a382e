"""SIGINT (Ctrl-C) and SIGTERM during training: finish the iteration, save a training state, exit with a message.

BasicSR's loop has no stop: SIGTERM ends the process at once, losing everything since the last periodic state,
and Ctrl-C prints a traceback from wherever the loop was.  Here the first signal only asks to stop; before the
next batch is handed out (:class:`~sclle_basicsr.runner.prefetchers.ClosingCPUPrefetcher` calls :meth:`before_batch`),
the data workers are closed, the networks and the training state of the last finished iteration are saved as a
periodic save would (``models/net_g_N.pth``, ``training_states/N.state``), and the process exits with status
128 + the signal number (130 for SIGINT, 143 for SIGTERM) after one line saying what was saved and how to resume
(``--auto_resume`` continues exactly).  A second signal stops at once without saving; so does a signal after the
last iteration (during the final save and validation).  Under DDP every rank stops after the same iteration (the
request is all-reduced before each batch), so no rank waits for another.
"""
import os
import os.path as osp
import signal
import threading

import torch

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _say(message):
    """Write to stderr without Python's buffered stream, which a signal handler must not re-enter."""
    os.write(2, f'sclle_basicsr: {message}\n'.encode())


class TrainingStop:
    """The stop request of one training run and what is needed to honour it."""

    def __init__(self):
        self.signum = None
        self.model = self.opt = self.prefetcher = None
        self.start_iter = 0
        self._pid = None

    # ------------------------------------------------------------------ set-up
    def install(self, opt):
        """Catch SIGINT and SIGTERM for the training run described by BasicSR's parsed ``opt``."""
        self.opt = opt
        if threading.current_thread() is not threading.main_thread():
            return
        self._pid = os.getpid()
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _completed(self):
        return self.start_iter + (self.prefetcher.delivered if self.prefetcher is not None else 0)

    def _finishing(self):
        """Whether the loop has had its last batch (it ends when the iteration count passes total_iter)."""
        return self._completed() > int(self.opt['train']['total_iter'])

    def _handle(self, signum, frame):
        if os.getpid() != self._pid:  # a forked data worker (Ctrl-C reaches the whole process group): the main
            return  # process stops the run and closes the workers
        name = signal.Signals(signum).name
        if self.signum is not None or self._finishing():
            when = ('during the final save and validation, after the last iteration' if self._finishing() else
                    'a second stop signal')
            _say(f'stopped at once by {name}, {when}, without saving; --auto_resume continues from the newest '
                 'saved training state')
            raise SystemExit(128 + signum)
        self.signum = signum
        _say(f'{name} received: finishing the current iteration, then saving a training state (send it again to '
             'stop at once, without saving)')

    # ------------------------------------------------------------------ the stop
    def _agreed_signal(self):
        """The stop request, the same on every rank under DDP (the largest signal number asked on any rank)."""
        signum = self.signum or 0
        if torch.distributed.is_available() and torch.distributed.is_initialized() \
                and torch.distributed.get_world_size() > 1:
            device = 'cuda' if torch.distributed.get_backend() == 'nccl' else 'cpu'
            flag = torch.tensor([signum], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            signum = int(flag.item())
        return signum

    def before_batch(self, prefetcher):
        """Stop here (save, exit) when a stop was asked for; called by the prefetcher before each batch."""
        self.prefetcher = prefetcher
        signum = self._agreed_signal()
        if signum:
            self._stop(signum, prefetcher)

    def _stop(self, signum, prefetcher):
        from basicsr.utils import get_root_logger
        name = signal.Signals(signum).name
        prefetcher.close()  # data workers and reader threads end before the process does
        completed = self._completed()
        state = osp.join(self.opt['path']['training_states'], f'{completed}.state')
        if completed == self.start_iter and (completed == 0 or osp.isfile(state)):
            message = (f'stopped by {name} before the first iteration of this run: nothing new to save' +
                       (f'; {state} is where it started' if completed else ''))
        else:
            if not osp.isfile(state):  # the periodic save of this iteration, when there was one, already wrote it
                self.model.save(prefetcher.epoch, completed)
            message = (f'stopped by {name} after iteration {completed}: saved {state} and its networks in '
                       f'{self.opt["path"]["models"]}; rerun with --auto_resume to continue exactly')
        get_root_logger().warning(message)  # on the console and in the run's log
        raise SystemExit(128 + signum)


STOP = TrainingStop()
