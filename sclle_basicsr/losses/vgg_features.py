"""Helpers shared by the SCL-LLE losses (not a ``*_loss.py`` file: nothing here is registered)."""
import copy

import torch

from sclle_basicsr.losses.precision import as_float32, float32_math
from sclle_basicsr.losses.scl_loss_base import SCLLossBase

DEFAULT_VGG_OPT = {'weights_format': 'caffe_bgr'}


def check_image(name, tensor, like=None, same_size=True):
    """Raise a clear error unless ``tensor`` is (N, 3, H, W) (and matches ``like`` in batch / size)."""
    if not torch.is_tensor(tensor) or tensor.dim() != 4 or tensor.size(1) != 3:
        shape = tuple(tensor.shape) if torch.is_tensor(tensor) else type(tensor).__name__
        raise ValueError(f'{name} must be an (N, 3, H, W) RGB tensor, got {shape}')
    if like is not None:
        if tensor.size(0) != like.size(0):
            raise ValueError(f'{name} has batch size {tensor.size(0)} but pred has {like.size(0)}: the losses pair '
                             'sample i of pred with sample i of each reference')
        if same_size and tensor.shape[-2:] != like.shape[-2:]:
            raise ValueError(f'{name} has size {tuple(tensor.shape[-2:])} but pred has {tuple(like.shape[-2:])}')
    return tensor


def as_negative_list(negative):
    """A negative tensor or a list/tuple of them (one per negative source) -> non-empty list."""
    negatives = list(negative) if isinstance(negative, (list, tuple)) else [negative]
    if not negatives:
        raise ValueError('negative: empty list; give at least one (N, 3, H, W) tensor')
    return negatives


def gram_matrix(feat):
    """G = F F^T / (C H W) per sample, (N, C, C), in at least float32 also under autocast (features may be half).

    Autocast would run ``bmm`` in fp16 / bf16 even on float32 inputs: with fp16, the Caffe VGG's relu2_2 Gram
    entries (sums of F_i F_j over H W pixels) overflow 65504 and the loss is NaN; with bf16 they lose 8 bits.
    """
    with float32_math(feat.device.type):
        feat = as_float32(feat)
        n, c, h, w = feat.shape
        flat = feat.reshape(n, c, h * w)
        return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def build_vgg(vgg_opt, layers):
    """A FrozenVGG16Features from options (``type`` optional) that provides at least ``layers``."""
    from basicsr.utils.registry import ARCH_REGISTRY
    opt = copy.deepcopy(dict(DEFAULT_VGG_OPT if vgg_opt is None else vgg_opt))
    arch = opt.pop('type', 'FrozenVGG16Features')
    own = opt.pop('layers', ())
    own = (own, ) if isinstance(own, str) else tuple(own)
    opt['layers'] = tuple(dict.fromkeys(tuple(layers) + own))
    return ARCH_REGISTRY.get(arch)(**opt)


def extract_features(extractor, pred, pred_layers, references):
    """VGG features of ``pred`` (with autograd) and of the reference inputs (one no-grad pass for all of them).

    ``references``: ``{input name: (tensor, list of tensors or None, layers)}``; None and empty lists are left
    out.  Returns ``{'pred': {layer: feature}, name: {layer: feature} or a list of them}``.  The references are
    constants, so no graph is kept; same-size references share one batch, each leaving it at its own deepest layer.
    """
    feats = {'pred': extractor(pred, tuple(pred_layers))}
    flat = [(name, value if isinstance(value, list) else None, x, tuple(layers))
            for name, (value, layers) in references.items() if value is not None
            for x in (value if isinstance(value, list) else [value])]
    with torch.no_grad():
        computed = extractor.extract_many([(x, layers) for _, _, x, layers in flat])
    for (name, as_list, _, _), feat in zip(flat, computed):
        if as_list is None:
            feats[name] = feat
        else:
            feats.setdefault(name, []).append(feat)
    return feats


class VGGFeatureLossBase(SCLLossBase):
    """A loss on frozen VGG-16 features.

    Standalone, it builds its extractor lazily, on first use, from its own ``vgg`` options (default: Caffe weights,
    which need ``weights_path``).  Inside :class:`~sclle_basicsr.losses.scl_losses.SCLLosses` the one shared
    extractor is attached with :meth:`attach_extractor` before any use, so the loss never builds its own.
    Subclasses set ``vgg_layers`` and ``vgg_inputs``.
    """

    def __init__(self, vgg=None, return_pair=False):
        super().__init__(return_pair)
        self.vgg_opt = vgg
        self.register_module('_extractor', None)

    @property
    def extractor(self):
        """The extractor, built now if neither built nor attached yet (then call ``.to``/``.double`` as needed)."""
        if self._extractor is None:
            self._extractor = build_vgg(self.vgg_opt, self.vgg_layers)
        return self._extractor

    def attach_extractor(self, extractor):
        missing = [name for name in self.vgg_layers if name not in extractor.layers]
        if missing:
            raise ValueError(f'{type(self).__name__}: the attached extractor does not provide {missing}')
        self._extractor = extractor

    def _extractor_on(self, tensor):
        extractor = self.extractor
        weight = extractor.features[0].weight
        if weight.device != tensor.device:
            extractor.to(tensor.device)
        return extractor

    def standalone(self, pred, inputs):
        """The loss of checked ``inputs`` with this loss's own passes (outside SCLLosses)."""
        references = {name: (inputs[name], self.vgg_layers) for name in self.vgg_inputs}
        feats = extract_features(self._extractor_on(pred), pred, self.vgg_layers, references)
        return self.as_output(self.from_features(pred, inputs, feats))
