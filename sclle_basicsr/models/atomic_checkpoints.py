"""BasicSR's checkpoint and training-state saving, with files that land whole or not at all, and a save that
fails stopping the run."""
import errno
import os.path as osp
import time

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only

from sclle_basicsr.utils.atomic_files import atomic_open, describe_os_error, os_error_behind
from sclle_basicsr.utils.run_errors import RunError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class CheckpointSaveError(RunError):
    """A checkpoint or training state could not be saved (the message names the file and the reason)."""


class AtomicCheckpointsMixin:
    """``save_network`` / ``save_training_state`` of BasicSR's ``BaseModel``, written through
    :func:`~sclle_basicsr.utils.atomic_files.atomic_open`.

    BasicSR ``torch.save``s straight to the final name, so a run killed while saving leaves a truncated
    ``N.state`` or ``net_g_N.pth`` that ``--auto_resume`` then picks.  File names, contents, the rank-0-only rule
    and BasicSR's three tries are kept.  BasicSR then logs a failed save and trains on, so a full disk ends a run
    with exit status 0 and no ``net_g_latest.pth``; here a save that fails stops the run with
    :class:`CheckpointSaveError` naming the file and the reason ("No space left on device" at once, without
    retrying), the previous files untouched.  A training state also records the batch layout it was trained with
    (``batch``: per-process batch size and world size), so that a resume with another layout is refused
    (:func:`~sclle_basicsr.runner.basicsr_runner.load_resume_state`).  Put it before the BasicSR model class:
    ``class MyModel(AtomicCheckpointsMixin, SRModel)``.
    """

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        nets = net if isinstance(net, list) else [net]
        param_keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(param_keys):
            raise ValueError(f'save_network: {len(nets)} networks but {len(param_keys)} param keys')
        save_dict = {}
        for net_, param_key_ in zip(nets, param_keys):
            state_dict = self.get_bare_model(net_).state_dict()
            for key, param in state_dict.items():
                state_dict[key] = param.cpu()
            save_dict[param_key_] = state_dict
        label = 'latest' if current_iter == -1 else current_iter
        self._save_with_retries(save_dict, osp.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))

    @master_only
    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:  # BasicSR saves no state for the final "latest" checkpoint
            return
        state = {
            'epoch': epoch,
            'iter': current_iter,
            'optimizers': [optimizer.state_dict() for optimizer in self.optimizers],
            'schedulers': [scheduler.state_dict() for scheduler in self.schedulers],
            **self.training_state_extras(),
        }
        layout = batch_layout(self.opt)
        if layout is not None:
            state['batch'] = layout
        self._save_with_retries(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def training_state_extras(self):
        """More entries for the training state (a model's GradScaler, say); none by default.  The model's
        ``resume_training`` reads them back."""
        return {}

    @staticmethod
    def _save_with_retries(obj, path, tries=3):
        logger = get_root_logger()
        advice = ('nothing was overwritten; --auto_resume continues from the newest saved training state once the '
                  'cause is fixed')
        for remaining in reversed(range(tries)):
            try:
                with atomic_open(path, 'wb') as f:
                    torch.save(obj, f)
                return
            except Exception as err:
                reason = describe_os_error(err)
                cause = os_error_behind(err)
                if cause is not None and cause.errno in DISK_FULL:  # retrying cannot help
                    raise CheckpointSaveError(f'cannot save {path}: {reason} (free space on '
                                              f'{osp.dirname(path)}); {advice}') from err
                logger.warning(f'Saving {path} failed: {reason}; {remaining} tries left')
                if not remaining:
                    raise CheckpointSaveError(f'cannot save {path} ({tries} tries): {reason}; {advice}') from err
                time.sleep(1)


def batch_layout(opt):
    """``{'batch_size': per-process batch, 'world_size': processes}`` of a training run's options (None without a
    train set): what the position of a resumed epoch depends on."""
    train = (opt.get('datasets') or {}).get('train')
    if not train or 'batch_size_per_gpu' not in train:
        return None
    multiplier = 1 if opt.get('dist') or not opt.get('num_gpu') else opt['num_gpu']  # as build_dataloader
    return {'batch_size': train['batch_size_per_gpu'] * multiplier, 'world_size': opt.get('world_size', 1)}
