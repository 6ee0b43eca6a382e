"""L_cc of SCL-LLE (Eq. 9): Zero-DCE's colour-constancy term plus its illumination smoothness of the curve maps."""
import torch
from basicsr.utils.registry import LOSS_REGISTRY

from sclle_basicsr.losses.precision import as_float32, float32_math
from sclle_basicsr.losses.scl_loss_base import SCLLossBase
from sclle_basicsr.losses.vgg_features import check_image


def safe_sqrt(x):
    """sqrt(x) for x >= 0 with the gradient at x == 0 set to 0 instead of inf (so 0 * inf never makes NaN).

    The value is exact everywhere (no eps bias).  Here x = D_RG^2 + D_RB^2 + D_GB^2 is quartic in the channel-mean
    differences, so sqrt(x) is quadratic near 0 and its true derivative there is 0: the masked gradient is the
    exact one, not an approximation.  (The released form, plain sqrt, gives NaN gradients on grey images.)
    """
    positive = x > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, x, torch.ones_like(x))), torch.zeros_like(x))


def illumination_smoothness(curves):
    """Zero-DCE's L_TVA: 2 * (sum (d_y A)^2 / ((H-1) W) + sum (d_x A)^2 / (H (W-1))) / N, summed over all maps."""
    n, _, h, w = curves.shape
    tv_h = ((curves[:, :, 1:, :] - curves[:, :, :-1, :])**2).sum()
    tv_w = ((curves[:, :, :, 1:] - curves[:, :, :, :-1])**2).sum()
    return 2 * (tv_h / ((h - 1) * w) + tv_w / (h * (w - 1))) / n


@LOSS_REGISTRY.register()
class ColorConstancyLoss(SCLLossBase):
    """loss_weight * (color_weight * L_col + smooth_weight * L_TVA(curves)).

    L_col: per image, channel means m_R, m_G, m_B; D_pq = (m_p - m_q)^2; sqrt(D_RG^2 + D_RB^2 + D_GB^2) (the released
    Zero-DCE form), averaged over the batch.  The sqrt is :func:`safe_sqrt`: exact value, zero (the true) gradient
    when all channel means are equal, where the plain form's gradient is NaN.
    L_TVA: :func:`illumination_smoothness` of ``curves`` (N, 3 * n_iter, H, W), the curve maps A_1..A_n.
    Defaults: 8 and 200 as in the paper / released code.

    ``forward(pred, *, curves=None)``: ``curves`` is required unless ``smooth_weight`` is 0.  L_col needs no
    reference, so in a stock BasicSR model (``pixel_opt``, called ``loss(output, gt)``) with ``smooth_weight: 0``
    it regularises the output's colour balance and gt is not used; with a smoothness term it refuses, since such a
    model has no curve maps.  ``return_pair: true`` for ``perceptual_opt``.
    """
    option_key = 'color_opt'
    log_key = 'l_cc'
    input_names = ('curves', )

    def __init__(self, loss_weight=1.0, color_weight=8.0, smooth_weight=200.0, return_pair=False):
        super().__init__(return_pair)
        self.loss_weight = loss_weight
        self.color_weight = color_weight
        self.smooth_weight = smooth_weight

    @property
    def required_inputs(self):
        return frozenset(self.input_names if self.smooth_weight else ())

    def check_inputs(self, pred, curves=None):
        if not self.smooth_weight:
            return {'curves': None}
        if curves is None:
            raise ValueError('ColorConstancyLoss: the smoothness term needs the curve maps (keyword curves=); set '
                             'smooth_weight: 0 for the colour term alone')
        if not torch.is_tensor(curves) or curves.dim() != 4 or curves.size(1) % 3 or curves.size(1) == 0:
            shape = tuple(curves.shape) if torch.is_tensor(curves) else type(curves).__name__
            raise ValueError(f'ColorConstancyLoss: curves must be (N, 3 * n, H, W), got {shape}')
        if curves.size(0) != pred.size(0):
            raise ValueError(f'ColorConstancyLoss: curves batch {curves.size(0)} != pred batch {pred.size(0)}')
        if min(curves.shape[-2:]) < 2:
            raise ValueError(f'ColorConstancyLoss: curves need H, W >= 2, got {tuple(curves.shape[-2:])}')
        return {'curves': curves}

    def forward(self, pred, target=None, *, curves=None):
        if target is not None and self.smooth_weight:
            self.refuse_stock_call(
                'curve maps (keyword curves=) for its smoothness term',
                'Set smooth_weight: 0 to use the colour term alone (it needs no gt), or train a curve network '
                '(DCENet) with SCLLLEModel, which passes its curve maps.')
        check_image('pred', pred)
        return self.as_output(self.from_features(pred, self.check_inputs(pred, curves=curves), None))

    def from_features(self, pred, inputs, feats):
        # in float32 whatever the autocast: D_pq^2 (about 1e-8) is below fp16's smallest subnormal
        with float32_math(pred.device.type):
            return self._loss_in_float32(as_float32(pred), inputs['curves'])

    def _loss_in_float32(self, pred, curves):
        means = pred.mean(dim=(2, 3))
        m_r, m_g, m_b = means[:, 0], means[:, 1], means[:, 2]
        d_rg, d_rb, d_gb = (m_r - m_g)**2, (m_r - m_b)**2, (m_g - m_b)**2
        loss = self.color_weight * safe_sqrt(d_rg**2 + d_rb**2 + d_gb**2).mean()
        if curves is not None:
            loss = loss + self.smooth_weight * illumination_smoothness(as_float32(curves))
        return self.loss_weight * loss
