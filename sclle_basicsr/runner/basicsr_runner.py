"""Fixes to BasicSR 1.4.2's training and test runners, applied by one explicit call: :func:`prepare_basicsr_runner`.

Importing ``sclle_basicsr`` changes nothing in BasicSR; ``sclle_basicsr/train.py`` and ``test.py`` call
``prepare_basicsr_runner()`` before BasicSR's ``train_pipeline`` / ``test_pipeline``, and so can your own train.py.

Why each fix exists:

* ``basicsr.train.load_resume_state`` maps the state onto ``torch.cuda.current_device()``, which fails on CPU; it
  looks for ``--auto_resume`` states under ``./experiments`` of the working directory; and it picks the newest
  state file even when a killed run left it empty (``EOFError``, naming no file).  :func:`load_resume_state` reads
  onto the CPU (the optimizers move their state to their parameters' device), looks under the run's
  ``experiments_root``, and skips, with a warning naming it, every state it cannot read or whose network files it
  cannot read.
* BasicSR's training loop tells only its sampler the epoch.  Datasets whose random draws are seeded per item and
  epoch (``UnpairedContrastiveDataset``) need it too; and BasicSR resumes at the *start* of the saved epoch, so a
  state saved mid-epoch replays that epoch's first batches.  :class:`ResumableEnlargedSampler` forwards the epoch
  and, in the resumed epoch, leaves out the samples already trained on.
* ``--launcher pytorch`` calls ``torch.cuda.set_device(rank % torch.cuda.device_count())`` and uses NCCL whatever
  the model's device: on a machine without CUDA that is a ZeroDivisionError, and a CPU model (``num_gpu: 0``) on a
  machine with GPUs gets an NCCL group it cannot use.  :func:`init_dist` initialises gloo for a CPU model instead
  and says so.
* A resume with another batch size (or number of processes) than the state was trained with puts the resumed
  epoch at the wrong sample; :func:`load_resume_state` refuses it, naming the state and the option.

The option checks, the lock on the run's folder, the stop on SIGINT / SIGTERM and the prefetchers that close
their workers (and copy the negatives to the GPU ahead of the step): :mod:`sclle_basicsr.runner.run_guards`,
installed by the same call.
"""
import argparse
import importlib
import itertools
import os
import os.path as osp
import subprocess
import sys
import warnings

import torch
import yaml
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.utils import check_resume, dist_util, get_root_logger

from sclle_basicsr.models.atomic_checkpoints import batch_layout
from sclle_basicsr.runner.run_guards import install_run_guards
from sclle_basicsr.runner.training_stop import STOP
from sclle_basicsr.utils.atomic_files import remove_stale_temporaries
from sclle_basicsr.utils.run_errors import RunError


def prepare_basicsr_runner():
    """Install the fixes into BasicSR's runner modules (idempotent); call it before ``train_pipeline``.

    ``basicsr.train`` gets :func:`load_resume_state` and :class:`ResumableEnlargedSampler`;
    ``basicsr.utils.options`` (whose ``parse_options`` starts the process group) gets :func:`init_dist`; then
    :func:`~sclle_basicsr.runner.run_guards.install_run_guards`.
    """
    import basicsr.train
    import basicsr.utils.options
    basicsr.train.load_resume_state = load_resume_state
    basicsr.train.EnlargedSampler = ResumableEnlargedSampler
    basicsr.utils.options.init_dist = init_dist
    install_run_guards()


class UnreadableStateError(RuntimeError):
    """A training state or its network file cannot be read."""


class ResumeMismatchError(RunError):
    """The options would not continue the run the training state comes from."""


def check_batch_layout(opt, state, path):
    """Refuse to resume ``state`` (at ``path``) with another batch size or number of processes than it was trained
    with: the resumed epoch would leave out the wrong samples.  States that do not record it are not checked."""
    saved, current = state.get('batch'), batch_layout(opt)
    if saved is None or current is None or saved == current:
        return
    raise ResumeMismatchError(
        f'training state {path} was trained with batch size {saved["batch_size"]} per process and '
        f'{saved["world_size"]} process(es); these options give {current["batch_size"]} and '
        f'{current["world_size"]} (datasets.train.batch_size_per_gpu, number of processes), so the run would not '
        'continue where it stopped: set them back to resume, or train under another name (option name)')


def _read(path, what, weights_only):
    try:
        return torch.load(path, map_location='cpu', weights_only=weights_only)
    except Exception as err:  # truncated zip, empty file, bad pickle: all mean "unreadable"
        raise UnreadableStateError(f'{what} {path} cannot be read ({type(err).__name__}: {err})') from err


def read_training_state(path, opt):
    """The state at ``path`` (BasicSR's pickle, written by this run, hence ``weights_only=False``: its schedulers
    hold ``Counter`` objects), after checking that the network files it resumes from can be read too."""
    state = _read(path, 'training state', weights_only=False)
    if not isinstance(state, dict) or not {'epoch', 'iter', 'optimizers', 'schedulers'} <= set(state):
        raise UnreadableStateError(f'training state {path} is not a BasicSR training state')
    ignored = opt['path'].get('ignore_resume_networks') or []
    for network in (key for key in opt if key.startswith('network_') and key not in ignored):
        net_path = osp.join(opt['path']['models'], f'net_{network[len("network_"):]}_{state["iter"]}.pth')
        if not osp.isfile(net_path):
            raise UnreadableStateError(f'training state {path}: its network file {net_path} does not exist')
        try:
            _read(net_path, 'network file', weights_only=True)
        except UnreadableStateError as err:
            raise UnreadableStateError(f'training state {path}: its {err}') from err
    return state


def _states_newest_first(state_dir):
    if not osp.isdir(state_dir):
        return []
    iters = [int(name[:-len('.state')]) for name in os.listdir(state_dir)
             if name.endswith('.state') and name[:-len('.state')].isdigit()]
    return [osp.join(state_dir, f'{it}.state') for it in sorted(iters, reverse=True)]


def _newest_readable_state(opt):
    state_dir = osp.join(opt['path']['experiments_root'], 'training_states')
    paths = _states_newest_first(state_dir)
    for path in paths:
        try:
            return path, read_training_state(path, opt)
        except UnreadableStateError as err:
            # BasicSR's root logger is not set up yet (doing so now would lose the log file): warn on stderr.
            warnings.warn(f'--auto_resume skipped a state: {err}', RuntimeWarning, stacklevel=3)
    if paths:
        warnings.warn(f'--auto_resume found no readable training state in {state_dir}: starting from iteration 0',
                      RuntimeWarning, stacklevel=3)
    return None, None


def load_resume_state(opt):
    """``basicsr.train.load_resume_state`` (same contract) for CPU machines and interrupted runs.

    ``auto_resume`` takes the newest state under ``<experiments_root>/training_states`` that, with its network
    files, can be read, after removing the temporary files of saves a kill interrupted; ``path.resume_state`` must
    be readable (an error names the file and the option).  Also hands the options and the state to the train set's
    :class:`ResumableEnlargedSampler`.
    """
    path = resume_state = None
    if opt.get('auto_resume'):
        if opt.get('rank', 0) == 0:  # the saving rank; the run is not writing: what a kill left half-written goes
            for folder in (osp.join(opt['path']['experiments_root'], 'training_states'), opt['path']['models']):
                for partial in remove_stale_temporaries(folder):
                    print(f'--auto_resume removed {partial}, left by a run stopped while writing it', flush=True)
        path, resume_state = _newest_readable_state(opt)
        if path is not None:
            opt['path']['resume_state'] = path
    elif opt['path'].get('resume_state'):
        path = opt['path']['resume_state']
        if not osp.isfile(path):
            raise FileNotFoundError(f'resume state {path} (path.resume_state) does not exist')
        try:
            resume_state = read_training_state(path, opt)
        except UnreadableStateError as err:
            raise UnreadableStateError(f'{err} (path.resume_state)') from err
    if resume_state is not None:
        check_batch_layout(opt, resume_state, path)
    STOP.start_iter = resume_state['iter'] if resume_state is not None else 0
    ResumableEnlargedSampler.plan_next(opt, resume_state)
    if path is None:
        return None
    check_resume(opt, resume_state['iter'])
    for key in opt:  # check_resume points pretrain_network_* at this run's BasicSR checkpoints: read their params
        if key.startswith('network_') and opt['path'].get(f'param_key_{key[len("network_"):]}', 'params') is None:
            opt['path'][f'param_key_{key[len("network_"):]}'] = 'params'
    return resume_state


class ResumableEnlargedSampler(EnlargedSampler):
    """BasicSR's ``EnlargedSampler`` that forwards the epoch to the dataset and resumes exactly.

    In the resumed epoch it leaves out the first ``done * batch_size`` samples, ``done`` being the iterations of
    that epoch already trained (epoch ``e`` covers iterations ``e*N+1 .. (e+1)*N``, ``N`` fixed by ``drop_last``);
    a state saved on an epoch's last iteration leaves less than a batch, so that epoch yields no batch and training
    goes on with the next one.  The rule depends only on the epoch, not on how often the sampler is iterated, so
    the iterator that BasicSR's prefetchers build before the first ``set_epoch`` consumes nothing, and data
    workers (re-created by each ``iter(loader)``, after ``set_epoch``) see the dataset's current epoch.

    BasicSR builds the sampler with ``(dataset, world_size, rank, ratio)`` only; the batch size and the resume
    point come from :meth:`plan_next`, which :func:`load_resume_state` calls for the train set built next.
    """

    _next_plan = None

    @classmethod
    def plan_next(cls, opt, resume_state):
        """Hand the next sampler built the train loader's options and the state being resumed (or None)."""
        train_opt = (opt.get('datasets') or {}).get('train')
        if train_opt is None:
            cls._next_plan = None
            return
        workers = train_opt.get('num_worker_per_gpu', 0)
        cls._next_plan = {
            'batch_size': batch_layout(opt)['batch_size'],
            'persistent_workers': bool(train_opt.get('persistent_workers')) and workers > 0,
            'resume': None if resume_state is None else (resume_state['epoch'], resume_state['iter']),
        }

    def __init__(self, dataset, num_replicas, rank, ratio=1):
        super().__init__(dataset, num_replicas, rank, ratio)
        plan, ResumableEnlargedSampler._next_plan = ResumableEnlargedSampler._next_plan, None
        self.resume_epoch, self.resume_skip = None, 0
        if plan is None:
            return
        if plan['persistent_workers'] and callable(getattr(dataset, 'set_epoch', None)):
            raise ValueError(f'datasets.train.persistent_workers: true keeps each data worker\'s copy of '
                             f'{type(dataset).__name__}, so its set_epoch never reaches them and every epoch would '
                             'repeat the random draws of the first; set persistent_workers: false')
        if plan['resume'] is not None:
            self._position(*plan['resume'], plan['batch_size'])

    def _position(self, epoch, current_iter, batch_size):
        iters_per_epoch = self.num_samples // batch_size
        done = current_iter - epoch * iters_per_epoch
        if not 0 < done <= iters_per_epoch:
            get_root_logger().warning(
                f'Resume state (epoch {epoch}, iter {current_iter}) does not fit {iters_per_epoch} iterations per '
                'epoch (dataset or batch size changed?): resuming at the start of the epoch, as BasicSR does.')
            return
        self.resume_epoch, self.resume_skip = epoch, done * batch_size
        get_root_logger().info(f'Resuming in epoch {epoch}: its first {done} of {iters_per_epoch} iterations '
                               f'({self.resume_skip} samples) were trained before the run stopped and are left out.')

    def set_epoch(self, epoch):
        super().set_epoch(epoch)
        if callable(getattr(self.dataset, 'set_epoch', None)):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        indices = super().__iter__()
        if self.epoch == self.resume_epoch:
            return itertools.islice(indices, self.resume_skip, None)
        return indices


def options_num_gpu(argv):
    """``num_gpu`` of the option file BasicSR's ``parse_options`` reads from ``argv`` (``-opt``, with a
    ``--force_yml num_gpu=...`` applied); None when there is no readable file or no ``num_gpu``."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument('-opt')
    parser.add_argument('--force_yml', nargs='+', default=[])
    args, _ = parser.parse_known_args(argv)
    if args.opt is None or not osp.isfile(args.opt):
        return None
    from basicsr.utils.options import ordered_yaml
    with open(args.opt) as f:
        num_gpu = (yaml.load(f, Loader=ordered_yaml()[0]) or {}).get('num_gpu')
    for entry in args.force_yml:
        key, _, value = entry.partition('=')
        if key.strip() == 'num_gpu':
            num_gpu = yaml.safe_load(value.strip())
    return num_gpu


def cpu_model_reason(argv):
    """Why the model BasicSR is about to build runs on the CPU (its device: ``cuda`` unless ``num_gpu`` is 0), or
    None when it runs on CUDA."""
    if not torch.cuda.is_available():
        return 'no CUDA device'
    num_gpu = options_num_gpu(argv)
    if num_gpu == 0 or (num_gpu == 'auto' and torch.cuda.device_count() == 0):
        return 'num_gpu is 0 (a CPU model)'
    return None


def init_dist(launcher, backend='nccl', **kwargs):
    """BasicSR's ``init_dist``, except ``--launcher pytorch`` for a CPU model: a gloo process group, no CUDA device.

    The model's device comes from the option file on the command line (:func:`cpu_model_reason`), the one
    ``parse_options`` is reading.  (``SCLLLEModel`` wraps DDP without ``device_ids`` on CPU.)
    """
    reason = cpu_model_reason(sys.argv[1:]) if launcher == 'pytorch' else None
    if reason is None:
        return dist_util.init_dist(launcher, backend, **kwargs)
    if backend == 'nccl':
        print(f'sclle_basicsr: {reason}, so the distributed backend is gloo instead of nccl', flush=True)
        backend = 'gloo'
    torch.distributed.init_process_group(backend=backend, **kwargs)


def run_pipeline(pipeline, root, args, show=None, log=print, keep_lines=200, env=None):
    """Run BasicSR's ``train_pipeline`` or ``test_pipeline`` (``pipeline``: 'train' | 'test') in a fresh process with
    ``root`` as its root folder (results, experiments) and ``args`` as its command line (``-opt FILE ...``).

    A fresh process because BasicSR's runners keep global logger state.  Output lines matching the regular
    expression ``show`` are passed to ``log`` as they come; ``env`` adds environment variables (``OMP_NUM_THREADS``).
    Returns ``(exit status, last keep_lines lines)``.
    """
    import re

    cmd = [sys.executable, '-m', 'sclle_basicsr.runner.basicsr_runner', pipeline, root, *args]
    tail = []
    # the working directory is the caller's: relative paths in option files are relative to it, as for train.py
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, **(env or {}))) as proc:
        for line in proc.stdout:
            tail = (tail + [line])[-keep_lines:]
            if show is not None and re.search(show, line):
                log(line.rstrip())
    return proc.returncode, ''.join(tail)


def main(argv=None):
    """``python -m sclle_basicsr.runner.basicsr_runner train|test ROOT [--import MODULE ...] -opt FILE [...]``.

    ``--import MODULE`` (repeatable) imports a module before the options are read, so that the archs, models or
    datasets it registers (your own) can be named in them.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] not in ('train', 'test'):
        sys.exit('usage: python -m sclle_basicsr.runner.basicsr_runner train|test ROOT [--import MODULE ...] -opt FILE '
                 '[BasicSR options]')
    pipeline, root = argv[0], osp.abspath(argv[1])
    import sclle_basicsr  # noqa: F401  (registers the archs, datasets, losses and models)
    ours = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    ours.add_argument('--import', dest='imports', action='append', default=[])
    known, basicsr_args = ours.parse_known_args(argv[2:])
    for module in known.imports:
        importlib.import_module(module)
    prepare_basicsr_runner()
    sys.argv = [sys.argv[0]] + basicsr_args  # BasicSR's parse_options reads the command line
    if pipeline == 'train':
        from basicsr.train import train_pipeline
        train_pipeline(root)
    else:
        from basicsr.test import test_pipeline
        test_pipeline(root)


if __name__ == '__main__':
    main()
