"""Fixes for the pinned stack, each applied once, before BasicSR or mmseg is imported.

Why each exists:
* basicsr 1.4.2 imports ``torchvision.transforms.functional_tensor``, which torchvision renamed to
  ``_functional_tensor``; without the alias ``import basicsr`` fails.
* mmsegmentation imports ``mmcv.ops``, which loads the compiled ``mmcv._ext``; mmcv-lite ships none.  DeepLabv3+
  needs no compiled op, so an import-time stand-in lets mmseg import, and any compiled op raises when *called*.
  The stand-in is installed only when the real extension is absent.
* ``basicsr.train.load_resume_state`` maps the state onto ``torch.cuda.current_device()``, which fails on CPU;
  we replace it with a loader that maps onto the available device.
* BasicSR's training loop tells only its sampler the epoch (``EnlargedSampler.set_epoch``).  Datasets whose random
  draws are seeded per item and epoch (``UnpairedContrastiveDataset``: reproducible with any number of workers and
  across ``--auto_resume``) need it too, so the sampler forwards it to a dataset that has ``set_epoch``.
* BasicSR resumes at the *start* of the saved epoch: a state saved mid-epoch replays that epoch's first batches,
  and one saved on its last iteration replays the whole epoch.  Once the loaders exist (so the iterations per
  epoch are known), the resumed epoch is corrected and the sampler skips the samples already trained on, so a
  resumed run trains on exactly the batches an uninterrupted run would.
* ``--launcher pytorch`` calls ``torch.cuda.set_device(rank % torch.cuda.device_count())`` with the NCCL backend
  (BasicSR passes no backend option to this launcher): on a machine without CUDA that is a ZeroDivisionError.  There
  the process group is initialised with gloo instead, and the log says so (``SCLLLEModel`` wraps DDP without
  ``device_ids`` on CPU).
"""
import importlib
import importlib.util
import os
import os.path as osp
import sys
import types

import torch

MMCV_EXT = 'mmcv._ext'


def alias_torchvision_functional_tensor():
    """Make ``torchvision.transforms.functional_tensor`` importable again (renamed in torchvision 0.17)."""
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except ImportError:
        sys.modules[name] = importlib.import_module('torchvision.transforms._functional_tensor')


class CompiledOpUnavailable(RuntimeError):
    """Raised when code calls an mmcv compiled op under mmcv-lite."""


def _missing_op(op_name):

    def op(*args, **kwargs):
        raise CompiledOpUnavailable(
            f'mmcv compiled op "{op_name}" was called, but mmcv-lite has no compiled extension ({MMCV_EXT}). '
            'Install the full mmcv package to use it; the SCL-LLE segmentor (DeepLabv3+) needs none.')

    op.__name__ = op_name
    return op


def _make_ext_standin():
    module = types.ModuleType(MMCV_EXT, 'Stand-in for the missing compiled mmcv extension (installed by sclle_basicsr).')
    module.__spec__ = importlib.util.spec_from_loader(MMCV_EXT, loader=None)
    module.__file__ = None
    module.IS_SCLLE_STANDIN = True

    def __getattr__(attr):  # mmcv's ext_loader asserts hasattr(ext, op) at import time
        if attr.startswith('__'):
            raise AttributeError(attr)
        return _missing_op(attr)

    module.__getattr__ = __getattr__
    return module


def install_mmcv_ext_standin():
    """Install the stand-in only when mmcv is installed and its compiled extension is not."""
    if MMCV_EXT in sys.modules or importlib.util.find_spec('mmcv') is None:
        return False
    if importlib.util.find_spec(MMCV_EXT) is not None:
        return False
    sys.modules[MMCV_EXT] = _make_ext_standin()
    return True


def _map_location():
    if torch.cuda.is_available():
        device_id = torch.cuda.current_device()
        return lambda storage, loc: storage.cuda(device_id)
    return lambda storage, loc: storage


def _latest_state(state_dir):
    if not osp.isdir(state_dir):
        return None
    iters = [int(f[:-len('.state')]) for f in os.listdir(state_dir) if f.endswith('.state') and f[:-6].isdigit()]
    return osp.join(state_dir, f'{max(iters)}.state') if iters else None


def load_resume_state(opt):
    """CPU-safe replacement of ``basicsr.train.load_resume_state`` (same contract).

    ``auto_resume`` looks under ``opt['path']['experiments_root']`` (BasicSR looks under ``./experiments`` of the
    working directory, which breaks runs started from another folder).  The state is BasicSR's own pickle, written
    by this run, so it is loaded with ``weights_only=False`` (its schedulers hold ``Counter`` objects).
    """
    from basicsr.utils import check_resume
    resume_state_path = None
    if opt.get('auto_resume'):
        resume_state_path = _latest_state(osp.join(opt['path']['experiments_root'], 'training_states'))
        if resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
    elif opt['path'].get('resume_state'):
        resume_state_path = opt['path']['resume_state']
    if resume_state_path is None:
        return None
    if not osp.isfile(resume_state_path):
        raise FileNotFoundError(f'resume state {resume_state_path} (path.resume_state) does not exist')
    resume_state = torch.load(resume_state_path, map_location=_map_location(), weights_only=False)
    check_resume(opt, resume_state['iter'])
    for key in opt:  # check_resume points pretrain_network_* at this run's BasicSR checkpoints: read their params
        if key.startswith('network_') and opt['path'].get(f'param_key_{key[8:]}', 'params') is None:
            opt['path'][f'param_key_{key[8:]}'] = 'params'
    _PENDING_RESUME['state'] = resume_state
    return resume_state


_PENDING_RESUME = {}


def position_resumed_epoch(resume_state, iters_per_epoch, sampler, batch_size):
    """Point ``resume_state['epoch']`` and ``sampler`` at the first batch not trained on yet.

    Epoch e of a run started from iteration 0 covers iterations e*N+1 .. (e+1)*N (N = iterations per epoch, fixed
    by ``drop_last``), so ``iter - epoch*N`` batches of the saved epoch are done.
    """
    epoch, done = resume_state['epoch'], resume_state['iter'] - resume_state['epoch'] * iters_per_epoch
    if not 0 < done <= iters_per_epoch:
        from basicsr.utils import get_root_logger
        get_root_logger().warning(
            f'Resume state (epoch {epoch}, iter {resume_state["iter"]}) does not fit {iters_per_epoch} iterations per '
            'epoch (dataset or batch size changed?): resuming at the start of the epoch, as BasicSR does.')
        return
    if done == iters_per_epoch:
        resume_state['epoch'] = epoch + 1
    else:
        sampler.skip_once = (epoch, done * batch_size)


def create_train_val_dataloader(opt, logger):
    """BasicSR's ``create_train_val_dataloader``, then the resumed epoch positioned (see the module docstring)."""
    result = _BASICSR_CREATE_LOADERS(opt, logger)
    resume_state = _PENDING_RESUME.pop('state', None)
    train_loader, train_sampler = result[0], result[1]
    if resume_state is not None and train_loader is not None:
        position_resumed_epoch(resume_state, len(train_loader), train_sampler, train_loader.batch_size)
    return result


def patch_basicsr_resume():
    global _BASICSR_CREATE_LOADERS
    import basicsr.train
    from basicsr.data.data_sampler import EnlargedSampler
    if basicsr.train.load_resume_state is load_resume_state:
        return
    basicsr.train.load_resume_state = load_resume_state
    _BASICSR_CREATE_LOADERS = basicsr.train.create_train_val_dataloader
    basicsr.train.create_train_val_dataloader = create_train_val_dataloader
    sampler_iter = EnlargedSampler.__iter__

    def __iter__(self):
        indices = sampler_iter(self)
        epoch, skip = getattr(self, 'skip_once', (None, 0))
        if epoch == self.epoch:
            del self.skip_once
            return iter(list(indices)[skip:])
        return indices

    EnlargedSampler.__iter__ = __iter__


def forward_epoch_to_datasets():
    from basicsr.data.data_sampler import EnlargedSampler
    if getattr(EnlargedSampler.set_epoch, 'forwards_to_dataset', False):
        return
    sampler_set_epoch = EnlargedSampler.set_epoch

    def set_epoch(self, epoch):
        sampler_set_epoch(self, epoch)
        if callable(getattr(self.dataset, 'set_epoch', None)):
            self.dataset.set_epoch(epoch)

    set_epoch.forwards_to_dataset = True
    EnlargedSampler.set_epoch = set_epoch


def init_dist_pytorch_cpu_aware(backend='nccl', **kwargs):
    """BasicSR's pytorch launcher, with gloo on machines without CUDA (see the module docstring)."""
    import torch.distributed as dist
    if torch.cuda.is_available():
        return _BASICSR_INIT_DIST_PYTORCH(backend, **kwargs)
    if backend == 'nccl':
        print('sclle_basicsr: no CUDA device, so the distributed backend is gloo instead of nccl', flush=True)
        backend = 'gloo'
    dist.init_process_group(backend=backend, **kwargs)


def patch_basicsr_launcher():
    global _BASICSR_INIT_DIST_PYTORCH
    from basicsr.utils import dist_util
    if dist_util._init_dist_pytorch is not init_dist_pytorch_cpu_aware:
        _BASICSR_INIT_DIST_PYTORCH = dist_util._init_dist_pytorch
        dist_util._init_dist_pytorch = init_dist_pytorch_cpu_aware


def apply():
    alias_torchvision_functional_tensor()
    install_mmcv_ext_standin()
    patch_basicsr_resume()
    forward_epoch_to_datasets()
    patch_basicsr_launcher()


apply()
