"""BasicSR's checkpoint and training-state saving, with files that land whole or not at all."""
import os.path as osp
import time

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only

from sclle_basicsr.atomic_files import atomic_open


class AtomicCheckpointsMixin:
    """``save_network`` / ``save_training_state`` of BasicSR's ``BaseModel``, written through
    :func:`~sclle_basicsr.atomic_files.atomic_open`.

    BasicSR ``torch.save``s straight to the final name, so a run killed while saving leaves a truncated
    ``N.state`` or ``net_g_N.pth`` that ``--auto_resume`` then picks.  File names, contents, the rank-0-only rule
    and BasicSR's three tries (a failed save is logged and training goes on) are kept.  Put it before the BasicSR
    model class: ``class MyModel(AtomicCheckpointsMixin, SRModel)``.
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
        self._save_with_retries(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def training_state_extras(self):
        """More entries for the training state (a model's GradScaler, say); none by default.  The model's
        ``resume_training`` reads them back."""
        return {}

    @staticmethod
    def _save_with_retries(obj, path, tries=3):
        logger = get_root_logger()
        for remaining in reversed(range(tries)):
            try:
                with atomic_open(path, 'wb') as f:
                    torch.save(obj, f)
                return
            except Exception as err:  # BasicSR's contract: a failed save must not stop training
                logger.warning(f'Saving {path} failed: {err}; {remaining} tries left')
                if remaining:
                    time.sleep(1)
        logger.warning(f'Could not save {path}; training goes on without it.')
