"""L_fr of SCL-LLE (Eq. 8): MSE between VGG features of the enhanced image and of the low-light input."""
import torch.nn.functional as F
from basicsr.utils.registry import LOSS_REGISTRY

from sclle_basicsr.losses.precision import as_float32, float32_math
from sclle_basicsr.losses.vgg_features import VGGFeatureLossBase, check_image

_REDUCTIONS = ('mean', 'sum')


@LOSS_REGISTRY.register()
class FeatureRetentionLoss(VGGFeatureLossBase):
    """loss_weight * MSE(f_l(pred), f_l(reference)), f_l = VGG-16 features at ``layer`` (default relu4_3).

    'mean' is Eq. 8's 1/(C_l W_l H_l) sum, also averaged over the batch; 'sum' sums the squared differences.
    ``forward(pred, reference)``: (N, 3, H, W) RGB [0, 1] tensors of the same shape; the reference's features are
    computed without autograd.  In SCL-LLE the reference is the low-light input (``lq``); a stock BasicSR model
    (``pixel_opt``, called ``loss(output, gt)``) passes gt, which makes this a VGG perceptual loss against gt
    (``return_pair: true`` for ``perceptual_opt``).  ``vgg``: options of the extractor built on first standalone
    use; inside SCLLosses the shared one is used.
    """
    option_key = 'retention_opt'
    log_key = 'l_fr'
    input_names = ('lq', )
    vgg_inputs = ('lq', )

    def __init__(self, loss_weight=1.0, layer='relu4_3', reduction='mean', vgg=None, return_pair=False):
        super().__init__(vgg, return_pair)
        if reduction not in _REDUCTIONS:
            raise ValueError(f'FeatureRetentionLoss: reduction must be one of {_REDUCTIONS}, got {reduction!r}')
        self.layer = layer
        self.vgg_layers = (layer, )
        self.loss_weight = loss_weight
        self.reduction = reduction

    def check_inputs(self, pred, lq=None):
        return {'lq': check_image('reference', lq, like=pred)}

    def forward(self, pred, reference):
        check_image('pred', pred)
        return self.standalone(pred, self.check_inputs(pred, lq=reference))

    def from_features(self, pred, inputs, feats):
        return self.loss_from_features(feats['pred'], feats['lq'])

    def loss_from_features(self, pred_feats, lq_feats):
        pred_feat, lq_feat = pred_feats[self.layer], lq_feats[self.layer]
        if pred_feat.shape != lq_feat.shape:
            raise ValueError(f'FeatureRetentionLoss: features of pred {tuple(pred_feat.shape)} and lq '
                             f'{tuple(lq_feat.shape)} differ in shape')
        with float32_math(pred_feat.device.type):  # a 'sum' over relu4_3 of a 384x384 batch passes fp16's range
            pred_feat = as_float32(pred_feat)
            return self.loss_weight * F.mse_loss(pred_feat, lq_feat.to(pred_feat.dtype), reduction=self.reduction)
