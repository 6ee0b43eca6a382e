"""UNIQUE (Zhang et al., "Uncertainty-aware blind image quality assessment in the laboratory and wild", TIP 2021),
the learned no-reference quality score of the paper's Tables 1 and 3, as a BasicSR metric (higher is better).

The network: a ResNet-34 backbone, bilinear pooling of its last feature map (the outer product of the 512-channel
features averaged over the positions, signed square root, L2 normalisation) and ``Linear(512 * 512, 2)``, whose
first output is the score (the second is the network's uncertainty, unused). Input: RGB in [0, 1] with ImageNet
normalisation; an image whose sides both exceed 768 pixels is first shrunk (PIL, bilinear) so that its shorter side
is 768, as the original demo does.

Its weights are not in any package and are never downloaded here (the ResNet-34 is built without ImageNet weights:
the UNIQUE file holds the whole network). They are read from, in order: the metric option ``weights``, the
environment variable ``SCLLE_UNIQUE_WEIGHTS``, or pyiqa's cache (``<torch hub dir>/pyiqa/UNIQUE.pt``, where
``pyiqa`` keeps the file it downloads). Both layouts load strictly: pyiqa's ``UNIQUE.pt`` (``backbone.*``, ``fc.*``)
and the original ``model.pt`` of DataParallel training (``module.backbone.*``, ``module.fc.*``), bare or in a
checkpoint dict (:func:`~sclle_basicsr.utils.checkpoints.unwrap_state_dict`). The network is built once per
weights file and device; a missing or unusable file is a :class:`~sclle_basicsr.metrics.common.MetricWeightsError`
at the first image, which ends the validation::

    val:
      metrics:
        unique: {type: calculate_unique, weights: /weights/UNIQUE.pt}   # device: cpu (default) | cuda | auto
"""
import functools
import os
import os.path as osp

import numpy as np
import torch
import torchvision
from basicsr.utils.registry import METRIC_REGISTRY
from PIL import Image
from torch import nn
from torch.nn import functional as F

from sclle_basicsr.inference.backends import resolve_device
from sclle_basicsr.metrics.common import MetricOptionError, MetricWeightsError, check_better, color_image
from sclle_basicsr.utils.checkpoints import (
    CheckpointError,
    InvalidWeightsError,
    check_weights,
    read_checkpoint,
    unwrap_state_dict,
)

WEIGHTS_ENV = 'SCLLE_UNIQUE_WEIGHTS'
FILE_NAME = 'UNIQUE.pt'
PYIQA_URL = 'https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/UNIQUE.pt'
PYIQA_RELEASE_URL = 'https://github.com/chaofengc/IQA-PyTorch/releases/download/v0.1-weights/UNIQUE.pt'
ORIGINAL_REPO = 'https://github.com/zwx8981/UNIQUE'
SHORT_SIDE = 768
# ResNet-34 reduces by 32: a smaller image leaves its last feature map one position made mostly of zero padding
MIN_SIDE = 32
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class UNIQUENet(nn.Module):
    """The UNIQUE network: ``(N, 3, H, W)`` RGB in [0, 1] -> ``(N,)`` quality scores.

    ``backbone`` is a whole torchvision ResNet-34 (its own classifier ``backbone.fc`` is in both weight files and
    unused), so that the state dict names are those of both files."""

    def __init__(self):
        super().__init__()
        self.backbone = torchvision.models.resnet34(weights=None)
        self.fc = nn.Linear(512 * 512, 2)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, x):
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1((x - self.mean) / self.std))))
        return b.layer4(b.layer3(b.layer2(b.layer1(x))))

    @staticmethod
    def bilinear_pool(x, eps=1e-8):
        """Outer product of the channel vectors averaged over the positions, signed square root, L2 norm."""
        n, c, h, w = x.shape
        x = x.reshape(n, c, h * w)
        gram = torch.bmm(x, x.transpose(1, 2)) / (h * w)
        gram = torch.sign(gram) * torch.sqrt(gram.abs() + eps)
        return F.normalize(gram.reshape(n, c * c), dim=1)

    def forward(self, x):
        return self.fc(self.bilinear_pool(self.features(x)))[:, 0]


def pyiqa_cache_path():
    """Where pyiqa keeps ``UNIQUE.pt`` (its cache: ``torch.hub.get_dir()/pyiqa``; ``$TORCH_HOME`` moves it)."""
    return osp.join(torch.hub.get_dir(), 'pyiqa', FILE_NAME)


def find_unique_weights(weights=None):
    """The absolute path of the UNIQUE weights: ``weights`` (the metric option), else ``$SCLLE_UNIQUE_WEIGHTS``, else
    pyiqa's cache. A path that is not a file is a :class:`MetricWeightsError` naming it, the setting it came from,
    where to get the file and where to put it."""
    if weights:
        path, where = str(weights), 'the metric option weights'
    elif os.environ.get(WEIGHTS_ENV):
        path, where = os.environ[WEIGHTS_ENV], f'${WEIGHTS_ENV}'
    else:
        path, where = pyiqa_cache_path(), f"pyiqa's cache; no metric option weights, no ${WEIGHTS_ENV}"
    path = osp.abspath(osp.expanduser(path))
    if not osp.isfile(path):
        raise MetricWeightsError(
            f'UNIQUE weights not found: {path} (from {where}). Get pyiqa\'s {FILE_NAME} ({PYIQA_URL} or '
            f'{PYIQA_RELEASE_URL}) or the original model.pt ({ORIGINAL_REPO}, "Pre-trained weights"), and put it '
            f'at {pyiqa_cache_path()}, or give its path as the metric option weights or in ${WEIGHTS_ENV}.')
    return path


def _key_summary(keys, limit=4):
    keys = sorted(keys)
    return ', '.join(keys[:limit]) + (f' ... ({len(keys)} in all)' if len(keys) > limit else '')


@functools.lru_cache(maxsize=4)
def load_unique(path, device='cpu'):
    """The UNIQUE network with the weights of ``path`` (strictly), in eval mode without gradients, on ``device``.

    Built once per ``(path, device)``: BasicSR calls a metric once per image. Any problem with the file is a
    :class:`MetricWeightsError` naming it."""
    try:
        state, source = unwrap_state_dict(read_checkpoint(path), path)
    except CheckpointError as err:
        raise MetricWeightsError(f'UNIQUE weights {path}: {str(err).splitlines()[0]}') from err
    where = path + (f' ["{source}"]' if source else '')
    net = UNIQUENet()
    expected = net.state_dict()
    missing, unexpected = set(expected) - set(state), set(state) - set(expected)
    if missing or unexpected:
        parts = ([f'missing {_key_summary(missing)}'] if missing else []) + \
                ([f'unexpected {_key_summary(unexpected)}'] if unexpected else [])
        raise MetricWeightsError(f'UNIQUE weights {where}: not a UNIQUE state dict (backbone.* and fc.* of a '
                                 f'ResNet-34 UNIQUE network): {"; ".join(parts)}')
    shapes = [f'{k}: {tuple(v.shape) if torch.is_tensor(v) else type(v).__name__} in the file, '
              f'{tuple(expected[k].shape)} expected' for k, v in state.items()
              if not torch.is_tensor(v) or v.shape != expected[k].shape]
    if shapes:
        raise MetricWeightsError(f'UNIQUE weights {where}: shape mismatch: {"; ".join(shapes[:3])}')
    net.load_state_dict(state, strict=True)
    try:
        check_weights(net.state_dict().items())
    except InvalidWeightsError as err:
        raise MetricWeightsError(f'UNIQUE weights {where}: {err}') from err
    return net.eval().requires_grad_(False).to(device)


def resized_size(height, width, short_side=SHORT_SIDE):
    """The original demo's resize (torchvision ``Resize(768)`` when both sides exceed 768): the shorter side becomes
    ``short_side``, the longer one ``int(short_side * longer / shorter)``; ``None`` when no resize is needed."""
    if min(height, width) <= short_side:
        return None
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def unique_input(img, input_order='HWC'):
    """A BasicSR metric image (8-bit BGR) as UNIQUE's input: ``(1, 3, H, W)`` RGB float in [0, 1], shrunk as the
    original demo does. An image under 32 pixels on a side is a ``ValueError`` (left out of the mean)."""
    rgb = color_image(img, input_order, 'calculate_unique')[:, :, ::-1]
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(f'calculate_unique needs at least {MIN_SIDE}x{MIN_SIDE} pixels, got {w}x{h}')
    size = resized_size(h, w)
    if size is not None:
        rgb = np.array(Image.fromarray(np.ascontiguousarray(rgb)).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().div_(255.0)


@METRIC_REGISTRY.register()
def calculate_unique(img, weights=None, device='cpu', input_order='HWC', better='higher', img2=None):
    """UNIQUE score of ``img`` (BasicSR metric image: 8-bit BGR ``HWC``); higher is better. ``img2`` (the ground
    truth, where there is one) is not used: UNIQUE needs no reference."""
    check_better('calculate_unique', better, 'higher')
    try:
        dev = resolve_device(device)
    except RuntimeError as err:  # CUDA asked for and absent: the option is wrong for every image
        raise MetricOptionError(f'calculate_unique: option device: {err}') from err
    net = load_unique(find_unique_weights(weights), str(dev))
    with torch.no_grad():
        return float(net(unique_input(img, input_order).to(dev))[0])
