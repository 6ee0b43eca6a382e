"""L_cc of SCL-LLE (Eq. 9): Zero-DCE's colour-constancy term plus its illumination smoothness of the curve maps."""
import torch
from basicsr.utils.registry import LOSS_REGISTRY
from torch import nn

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
class ColorConstancyLoss(nn.Module):
    """loss_weight * (color_weight * L_col + smooth_weight * L_TVA(curves)).

    L_col: per image, channel means m_R, m_G, m_B; D_pq = (m_p - m_q)^2; sqrt(D_RG^2 + D_RB^2 + D_GB^2) (the released
    Zero-DCE form), averaged over the batch.  The sqrt is :func:`safe_sqrt`: exact value, zero (the true) gradient
    when all channel means are equal, where the plain form's gradient is NaN.
    L_TVA: :func:`illumination_smoothness` of ``curves`` (N, 3 * n_iter, H, W), the curve maps A_1..A_n.
    ``forward(pred, curves=None)``: without ``curves`` only the colour term.  Defaults: 8 and 200 as in the paper /
    released code.
    """

    def __init__(self, loss_weight=1.0, color_weight=8.0, smooth_weight=200.0):
        super().__init__()
        self.loss_weight = loss_weight
        self.color_weight = color_weight
        self.smooth_weight = smooth_weight

    def forward(self, pred, curves=None):
        check_image('pred', pred)
        means = pred.mean(dim=(2, 3))
        m_r, m_g, m_b = means[:, 0], means[:, 1], means[:, 2]
        d_rg, d_rb, d_gb = (m_r - m_g)**2, (m_r - m_b)**2, (m_g - m_b)**2
        loss = self.color_weight * safe_sqrt(d_rg**2 + d_rb**2 + d_gb**2).mean()
        if curves is not None and self.smooth_weight:
            if not torch.is_tensor(curves) or curves.dim() != 4 or curves.size(1) % 3 or curves.size(1) == 0:
                shape = tuple(curves.shape) if torch.is_tensor(curves) else type(curves).__name__
                raise ValueError(f'ColorConstancyLoss: curves must be (N, 3 * n, H, W), got {shape}')
            if curves.size(0) != pred.size(0):
                raise ValueError(f'ColorConstancyLoss: curves batch {curves.size(0)} != pred batch {pred.size(0)}')
            if min(curves.shape[-2:]) < 2:
                raise ValueError(f'ColorConstancyLoss: curves need H, W >= 2, got {tuple(curves.shape[-2:])}')
            loss = loss + self.smooth_weight * illumination_smoothness(curves)
        return self.loss_weight * loss
