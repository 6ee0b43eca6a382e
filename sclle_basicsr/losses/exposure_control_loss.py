"""Zero-DCE's exposure control term: the mean brightness of each patch pulled toward one well-exposed level."""
import torch.nn.functional as F
from basicsr.utils.registry import LOSS_REGISTRY

from sclle_basicsr.losses.precision import as_float32, float32_math
from sclle_basicsr.losses.scl_loss_base import SCLLossBase
from sclle_basicsr.losses.vgg_features import check_image


@LOSS_REGISTRY.register()
class ExposureControlLoss(SCLLossBase):
    """loss_weight * mean over patches of (mean brightness of the patch - level)^2.

    Brightness: the mean over RGB; patches: non-overlapping ``patch_size`` squares (a partial patch at the border is
    left out, as average pooling does).  Defaults: Zero-DCE's (weight 10, level 0.6, 16x16).  Not a term of the
    SCL-LLE paper: the released SCL-LLE code defines it but leaves it out of its loss.  It needs no reference, so a
    stock BasicSR model (``pixel_opt``, called ``loss(output, gt)``) can use it too; gt is not read.
    """
    option_key = 'exposure_opt'
    log_key = 'l_exp'
    input_names = ()

    def __init__(self, loss_weight=10.0, level=0.6, patch_size=16, return_pair=False):
        super().__init__(return_pair)
        if not 0 <= level <= 1:
            raise ValueError(f'ExposureControlLoss: level must be in [0, 1] (an RGB brightness), got {level}')
        if int(patch_size) != patch_size or patch_size < 1:
            raise ValueError(f'ExposureControlLoss: patch_size must be a positive integer, got {patch_size}')
        self.loss_weight = loss_weight
        self.level = level
        self.patch_size = int(patch_size)

    def check_inputs(self, pred):
        if min(pred.shape[-2:]) < self.patch_size:
            raise ValueError(f'ExposureControlLoss: the image {tuple(pred.shape[-2:])} is smaller than one patch '
                             f'({self.patch_size}x{self.patch_size}, option patch_size)')
        return {}

    def forward(self, pred, target=None):
        check_image('pred', pred)
        return self.as_output(self.from_features(pred, self.check_inputs(pred), None))

    def from_features(self, pred, inputs, feats):
        with float32_math(pred.device.type):
            patches = F.avg_pool2d(as_float32(pred).mean(dim=1, keepdim=True), self.patch_size)
            return self.loss_weight * ((patches - self.level)**2).mean()
