"""Mixing the SCL-LLE losses into a paired BasicSR model (SRModel) from its YAML."""
from collections import OrderedDict

import torch.nn.functional as F
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY

from sclle_basicsr.losses.scl_losses import SCLLosses
from sclle_basicsr.models.atomic_checkpoints import AtomicCheckpointsMixin

# where a batch gets each SCL input from (PairedContrastiveDataset / UnpairedContrastiveDataset options)
BATCH_SOURCES = {'pos': 'dataroot_pos', 'neg': 'dataroot_neg', 'label': 'dataroot_label'}


@MODEL_REGISTRY.register()
class SRWithSCLLossesModel(AtomicCheckpointsMixin, SRModel):
    """SRModel (optional pixel / perceptual losses against gt) plus the SCL-LLE losses, configured under ``train:``
    exactly as in :class:`SCLLLEModel` (one option shape for both models), beside ``pixel_opt``.

    The keys are :class:`SCLLosses`' (``contrastive_opt``, ``semantic_opt``, ``retention_opt``, ``color_opt``
    with ``smooth_weight: 0``, ``exposure_opt``, ``vgg_opt``, ``segmentor_opt``).  pred = the network output, lq = the
    input (bilinearly resized to the output size when the network changes the size); ``pos``, ``neg``, ``label``
    come from the batch (:class:`PairedContrastiveDataset` gives them with gt).  Curve maps are not available
    here.  ``pixel_opt`` / ``perceptual_opt`` are optional: the SCL losses alone are a valid objective.
    """

    def init_training_settings(self):
        self.scl_losses = SCLLosses(self.opt['train']).to(self.device)
        if 'curves' in self.scl_losses.required_inputs:
            raise ValueError('train.color_opt: a generic network gives no curve maps; set smooth_weight: 0 '
                             '(or train DCENet with SCLLLEModel)')
        try:
            super().init_training_settings()
        except ValueError:
            if self.cri_pix is not None or self.cri_perceptual is not None:
                raise
            # SRModel stops here without pixel_opt and perceptual_opt; the SCL losses are the objective instead
            self.setup_optimizers()
            self.setup_schedulers()

    def feed_data(self, data):
        super().feed_data(data)
        to = lambda v: [x.to(self.device) for x in v] if isinstance(v, (list, tuple)) else v.to(self.device)  # noqa
        self.scl_inputs = {k: to(data[k]) for k in BATCH_SOURCES if k in data}
        self.batch_has_gt = 'gt' in data

    def check_batch(self):
        """Say what a training batch lacks, naming the dataset option that provides it."""
        if (self.cri_pix or self.cri_perceptual) and not self.batch_has_gt:
            raise ValueError('SRWithSCLLossesModel: pixel_opt / perceptual_opt compare with gt, but the training '
                             'batches have none; use PairedContrastiveDataset (option dataroot_gt) or drop those '
                             'losses and train on the SCL losses alone')
        missing = sorted(self.scl_losses.required_inputs - {'lq'} - set(self.scl_inputs))
        if missing:
            raise ValueError(f'SRWithSCLLossesModel: the SCL losses under train: need {missing} in the training '
                             f'batches; give the dataset {[BATCH_SOURCES[k] for k in missing]}'
                             ' (PairedContrastiveDataset)')

    def optimize_parameters(self, current_iter):
        self.check_batch()
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.lq)
        lq = self.lq
        if lq.shape[-2:] != self.output.shape[-2:]:
            lq = F.interpolate(lq, size=self.output.shape[-2:], mode='bilinear', align_corners=False)
        l_total, loss_dict = self.scl_losses(self.output, lq=lq, **self.scl_inputs)
        if self.cri_pix:
            loss_dict['l_pix'] = self.cri_pix(self.output, self.gt)
            l_total = l_total + loss_dict['l_pix']
        if self.cri_perceptual:
            for key, value in zip(('l_percep', 'l_style'), self.cri_perceptual(self.output, self.gt)):
                if value is not None:
                    loss_dict[key] = value
                    l_total = l_total + value
        l_total.backward()
        self.optimizer_g.step()
        self.log_dict = self.reduce_loss_dict(OrderedDict(loss_dict))
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)
