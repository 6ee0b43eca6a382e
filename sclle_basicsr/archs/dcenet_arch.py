"""DCE-Net: the curve estimator of Zero-DCE (Guo et al. 2020), the enhancer SCL-LLE trains."""
import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


def flush_subnormals_(tensor):
    """Zero float subnormals in place and return how many there were.

    The released SCL-LLE checkpoint is about half float32 subnormals; on CPU each multiply with one takes a slow
    microcode path, making a forward pass many times slower for no numerical gain (|x| < 1.2e-38).
    """
    if not tensor.is_floating_point():
        return 0
    subnormal = (tensor != 0) & (tensor.abs() < torch.finfo(tensor.dtype).tiny)
    count = int(subnormal.sum())
    if count:
        tensor.masked_fill_(subnormal, 0)
    return count


def apply_curves(x, curves):
    """Apply the light-enhancement curves in turn: x <- x + A_n * (x^2 - x), A_n = 3-channel slices of ``curves``."""
    for curve in torch.split(curves, 3, dim=1):
        x = x + curve * (x * x - x)
    return x


@ARCH_REGISTRY.register()
class DCENet(nn.Module):
    """Seven 3x3 convolutions with symmetric skip concatenations, predicting ``num_iterations`` RGB curve maps.

    ``forward(x)`` returns the enhanced image only, which is what BasicSR's SRModel expects.
    ``forward(x, return_curves=True)`` returns ``(enhanced, curves)`` from the same forward: the training model
    needs the curve maps for the illumination-smoothness loss, and going through ``forward`` (not a second method)
    keeps DistributedDataParallel's hooks working.

    Parameter names (``e_conv1`` ... ``e_conv7``) match the released Zero-DCE and SCL-LLE checkpoints, which load
    strictly.  Loading a state dict flushes float32 subnormals to zero (see :func:`flush_subnormals_`).

    ``init_std``: when set, conv weights start from N(0, init_std) as in the released training code (0.02);
    ``None`` keeps PyTorch's default initialisation.
    """

    def __init__(self, num_iterations=8, num_features=32, init_std=None):
        super().__init__()
        if num_iterations < 1 or num_features < 1:
            raise ValueError(f'num_iterations ({num_iterations}) and num_features ({num_features}) must be >= 1')
        self.num_iterations = num_iterations
        nf = num_features

        def conv(c_in, c_out):
            return nn.Conv2d(c_in, c_out, 3, 1, 1, bias=True)

        self.e_conv1 = conv(3, nf)
        self.e_conv2 = conv(nf, nf)
        self.e_conv3 = conv(nf, nf)
        self.e_conv4 = conv(nf, nf)
        self.e_conv5 = conv(nf * 2, nf)
        self.e_conv6 = conv(nf * 2, nf)
        self.e_conv7 = conv(nf * 2, 3 * num_iterations)
        self.relu = nn.ReLU(inplace=True)
        self.register_load_state_dict_post_hook(_flush_after_load)
        if init_std is not None:
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    nn.init.normal_(module.weight, 0.0, init_std)

    def estimate_curves(self, x):
        """The curve maps A_1..A_n stacked on channels, in [-1, 1]: (N, 3 * num_iterations, H, W)."""
        x1 = self.relu(self.e_conv1(x))
        x2 = self.relu(self.e_conv2(x1))
        x3 = self.relu(self.e_conv3(x2))
        x4 = self.relu(self.e_conv4(x3))
        x5 = self.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = self.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        return torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))

    def forward(self, x, return_curves=False):
        if x.dim() != 4 or x.size(1) != 3:
            raise ValueError(f'DCENet expects an (N, 3, H, W) RGB tensor, got shape {tuple(x.shape)}')
        curves = self.estimate_curves(x)
        enhanced = apply_curves(x, curves)
        return (enhanced, curves) if return_curves else enhanced


def _flush_after_load(module, incompatible_keys):
    for param in module.parameters():
        with torch.no_grad():
            flush_subnormals_(param)
