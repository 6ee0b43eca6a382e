"""Example: mixing the SCL-LLE losses into a paired BasicSR model (SRModel) from its YAML."""
from collections import OrderedDict

import torch.nn.functional as F
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY

from sclle_basicsr.losses.scl_losses import SCLLosses
from sclle_basicsr.models.atomic_checkpoints import AtomicCheckpointsMixin


@MODEL_REGISTRY.register()
class SRWithSCLLossesModel(AtomicCheckpointsMixin, SRModel):
    """SRModel (pixel / perceptual losses against gt) plus the SCL-LLE losses of ``train: scl_losses:``.

    ``scl_losses`` takes :class:`SCLLosses` options (``retention_opt``, ``color_opt`` with ``smooth_weight: 0``,
    ``contrastive_opt``, ``semantic_opt``, ``vgg_opt``, ``segmentor_opt``).  pred = the network output, lq = the
    input (bilinearly resized to the output size when the network changes the size); ``pos``, ``neg``, ``label``
    come from the batch when the dataset provides them.  Curve maps are not available here.
    """

    def init_training_settings(self):
        self.scl_losses = SCLLosses(self.opt['train'].get('scl_losses')).to(self.device)
        if 'curves' in self.scl_losses.required_inputs:
            raise ValueError('scl_losses: a generic network gives no curve maps; set color_opt smooth_weight: 0')
        super().init_training_settings()

    def feed_data(self, data):
        super().feed_data(data)
        to = lambda v: [x.to(self.device) for x in v] if isinstance(v, (list, tuple)) else v.to(self.device)  # noqa
        self.scl_inputs = {k: to(data[k]) for k in ('pos', 'neg', 'label') if k in data}

    def optimize_parameters(self, current_iter):
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
