"""L_fr of SCL-LLE (Eq. 8): MSE between VGG features of the enhanced image and of the low-light input."""
import torch
import torch.nn.functional as F
from basicsr.utils.registry import LOSS_REGISTRY

from sclle_basicsr.losses.vgg_features import VGGFeatureLossBase, check_image

_REDUCTIONS = ('mean', 'sum')


@LOSS_REGISTRY.register()
class FeatureRetentionLoss(VGGFeatureLossBase):
    """loss_weight * MSE(f_l(pred), f_l(lq)), f_l = VGG-16 features at ``layer`` (default relu4_3).

    'mean' is Eq. 8's 1/(C_l W_l H_l) sum, also averaged over the batch; 'sum' sums the squared differences.
    ``forward(pred, lq)``: (N, 3, H, W) RGB [0, 1] tensors of the same shape; lq's features are computed without
    autograd.  ``vgg``: options of the extractor built on first standalone use; inside SCLLosses the shared one
    is used.
    """

    def __init__(self, loss_weight=1.0, layer='relu4_3', reduction='mean', vgg=None):
        super().__init__(vgg)
        if reduction not in _REDUCTIONS:
            raise ValueError(f'FeatureRetentionLoss: reduction must be one of {_REDUCTIONS}, got {reduction!r}')
        self.layer = layer
        self.vgg_layers = (layer, )
        self.loss_weight = loss_weight
        self.reduction = reduction

    def forward(self, pred, lq):
        check_image('pred', pred)
        check_image('lq', lq, like=pred)
        extractor = self._extractor_on(pred)
        pred_feats = extractor(pred, self.vgg_layers)
        with torch.no_grad():  # lq is the fixed reference
            lq_feats = extractor(lq, self.vgg_layers)
        return self.loss_from_features(pred_feats, lq_feats)

    def loss_from_features(self, pred_feats, lq_feats):
        pred_feat, lq_feat = pred_feats[self.layer], lq_feats[self.layer]
        if pred_feat.shape != lq_feat.shape:
            raise ValueError(f'FeatureRetentionLoss: features of pred {tuple(pred_feat.shape)} and lq '
                             f'{tuple(lq_feat.shape)} differ in shape')
        return self.loss_weight * F.mse_loss(pred_feat, lq_feat.to(pred_feat.dtype), reduction=self.reduction)
