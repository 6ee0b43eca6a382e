"""Frozen DeepLabv3+ built through mmsegmentation: the semantic module of SCL-LLE (L_sc's cross-entropy)."""
import copy
import importlib.util
import os.path as osp
import warnings

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from sclle_basicsr._compat import install_mmcv_ext_standin
from sclle_basicsr.utils.checkpoints import unwrap_state_dict

DEFAULT_CONFIG_NAME = 'deeplabv3plus/deeplabv3plus_r50-d8_4xb2-80k_cityscapes-512x1024.py'
# An mmseg checkpoint that fits the default config (not bundled; give it, or a local copy, as `checkpoint`):
CITYSCAPES_CHECKPOINT_URL = (
    'https://download.openmmlab.com/mmsegmentation/v0.5/deeplabv3plus/'
    'deeplabv3plus_r50-d8_512x1024_80k_cityscapes/'
    'deeplabv3plus_r50-d8_512x1024_80k_cityscapes_20200606_114049-f9fb496d.pth')


def default_config_path():
    """The Cityscapes DeepLabv3+ R50-D8 512x1024 config shipped inside the installed mmsegmentation."""
    import mmseg
    return osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', DEFAULT_CONFIG_NAME)


def _sync_bn_to_bn(node):
    """Recursively turn every ``norm_cfg``-like dict of type SyncBN into BN (single process, CPU-safe)."""
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
        for value in node.values():
            _sync_bn_to_bn(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _sync_bn_to_bn(value)
    return node


def _conv_bn_pairs(model, example):
    """(conv, bn) pairs in which the BN consumes exactly the conv's output, found by running ``example`` once.

    Tracing instead of matching attribute names keeps this independent of how mmseg/mmcv name their layers
    (``stem.0``/``stem.1``, ``conv1``/``bn1``, ``ConvModule.conv``/``.bn``).  Modules called more than once are
    left alone.
    """
    produced, pairs, calls, handles = {}, [], {}, []

    def after_conv(module, inputs, output):
        produced[id(output)] = (module, output)
        calls[module] = calls.get(module, 0) + 1

    def before_bn(module, inputs):
        calls[module] = calls.get(module, 0) + 1
        hit = produced.get(id(inputs[0]))
        if hit is not None and hit[1] is inputs[0]:
            pairs.append((hit[0], module))

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(after_conv))
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            handles.append(module.register_forward_pre_hook(before_bn))
    try:
        with torch.no_grad():
            output = model(example)
    finally:
        for handle in handles:
            handle.remove()
    return [(conv, bn) for conv, bn in pairs if calls[conv] == 1 and calls[bn] == 1], output


def fold_batch_norms(model, example):
    """Fold every eval-mode BN into the conv that feeds it (exact algebra) and replace the BN by Identity.

    Why: the segmentor is frozen, so its BNs are fixed affine maps; folded, a forward + backward skips 69 BN
    passes and their saved activations (R50-D8 forward + backward at 2x384^2 on a 2-core CPU: 7.1 s -> 5.8 s;
    peak memory of a whole SCL-LLE training step: 3.5 -> 2.6 GB).  Returns the number of BNs folded.
    """
    parents = {child: (parent, name) for parent in model.modules() for name, child in parent.named_children()}
    pairs, before = _conv_bn_pairs(model, example)
    with torch.no_grad():
        for conv, bn in pairs:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps) if bn.affine else torch.rsqrt(
                bn.running_var + bn.eps)
            shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
            conv.weight.mul_(scale.view(-1, 1, 1, 1).to(conv.weight.dtype))
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.bias = nn.Parameter(((bias - bn.running_mean) * scale + shift).to(conv.weight.dtype),
                                     requires_grad=False)
            parent, name = parents[bn]
            setattr(parent, name, nn.Identity())
        after = model(example)
    # a conv output that also feeds something other than its BN would be changed by folding: refuse, loudly
    if not torch.allclose(after, before, rtol=1e-4, atol=1e-4 * float(before.abs().max()) + 1e-12):
        raise RuntimeError(f'fold_batch_norms: {type(model).__name__} changed its output after folding '
                           f'(max abs diff {float((after - before).abs().max()):.3g}); build it with '
                           'fold_batch_norm: false')
    return len(pairs)


@ARCH_REGISTRY.register()
class FrozenDeepLabV3Plus(nn.Module):
    """A frozen mmsegmentation segmentor (default: DeepLabv3+ R50-D8 for Cityscapes) on RGB [0, 1] input.

    Args:
        config (str | dict | None): an mmseg config file (any segmentor with ``encode_decode``), a config as a dict
            (with a ``model`` key), or None for the Cityscapes ``deeplabv3plus_r50-d8`` 512x1024 config shipped in
            the installed mmsegmentation (:func:`default_config_path`).
        checkpoint (str | None): path or URL (anything mmengine's ``CheckpointLoader`` reads, e.g.
            :data:`CITYSCAPES_CHECKPOINT_URL`).  None only together with ``allow_random_init: true``.
        allow_random_init (bool): allow ``checkpoint: ~`` (random weights; tests only).
        allow_key_mismatch (bool): load despite missing, unexpected or wrongly shaped keys (they are reported
            through the BasicSR logger either way; without this flag they are an error).  The checkpoint's
            ``auxiliary_head.*`` keys are always skipped, as the auxiliary head is not built.
        cfg_options (dict | None): overrides merged into the config (mmengine ``merge_from_dict`` keys, e.g.
            ``{'model.decode_head.num_classes': 5}``).
        num_classes (int | None): shortcut for ``model.decode_head.num_classes``.
        fold_batch_norm (bool): after loading, fold each BN into the conv before it (:func:`fold_batch_norms`;
            same function, faster, less memory; the model's state_dict then holds the folded weights).  Default
            true.

    Building: SyncBN is replaced by BN everywhere, the auxiliary head is dropped, ``pretrained``/backbone init is
    disabled (weights come only from ``checkpoint``) and mmseg's data preprocessor is not used: ``forward``
    normalises itself with the config's ``data_preprocessor`` mean/std (0-255 scale), taking RGB input when the
    config converts BGR to RGB (``bgr_to_rgb``/``rgb_to_bgr`` true, the mmseg default), BGR otherwise.

    ``forward(x)``: x is (N, 3, H, W) RGB in [0, 1]; returns logits (N, num_classes, H, W) resized (bilinear) to the
    input size by the decode head.  Frozen: parameters never require grad, the module stays in eval mode (BN
    running statistics, no dropout) when a parent calls ``.train()``; gradients reach the input.
    """

    def __init__(self,
                 config=None,
                 checkpoint=None,
                 allow_random_init=False,
                 allow_key_mismatch=False,
                 cfg_options=None,
                 num_classes=None,
                 fold_batch_norm=True):
        super().__init__()
        if checkpoint is None and not allow_random_init:
            raise ValueError('FrozenDeepLabV3Plus: option checkpoint is required (a path or URL of an mmseg '
                             'checkpoint, e.g. ' + CITYSCAPES_CHECKPOINT_URL + '); random weights need the '
                             'explicit option allow_random_init: true')
        if importlib.util.find_spec('mmcv') is None:  # mmsegmentation imports mmcv without declaring it
            raise ModuleNotFoundError("FrozenDeepLabV3Plus needs mmcv, which mmsegmentation imports and this package "
                                      "leaves to you (full mmcv < 2.2.0, or its pure-Python part: pip install "
                                      "'sclle-basicsr[mmcv-lite]'; never both)", name='mmcv')
        install_mmcv_ext_standin()  # mmseg's models import mmcv.ops, whose compiled part mmcv-lite lacks
        from mmengine.config import Config
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules

        if config is None:
            config = default_config_path()
        if isinstance(config, str):
            if not osp.isfile(config):
                raise FileNotFoundError(f'FrozenDeepLabV3Plus: mmseg config {config!r} (option config) does not exist')
            cfg = Config.fromfile(config)
        else:
            cfg = Config(copy.deepcopy(dict(config)))
        if cfg_options:
            cfg.merge_from_dict(dict(cfg_options))
        if 'model' not in cfg:
            raise ValueError(f'FrozenDeepLabV3Plus: config {config!r} has no `model` entry')
        model_cfg = cfg.model.to_dict()
        if num_classes is not None:
            model_cfg['decode_head']['num_classes'] = int(num_classes)

        preproc = model_cfg.pop('data_preprocessor', None) or cfg.get('data_preprocessor', None) or {}
        mean = preproc.get('mean', (123.675, 116.28, 103.53))
        std = preproc.get('std', (58.395, 57.12, 57.375))
        # mmseg reads images as BGR; a preprocessor that swaps channels means the network consumes RGB.
        self.rgb_input = bool(preproc.get('bgr_to_rgb', False) or preproc.get('rgb_to_bgr', False))
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

        model_cfg.pop('auxiliary_head', None)
        model_cfg['pretrained'] = None
        model_cfg.pop('init_cfg', None)
        if isinstance(model_cfg.get('backbone'), dict):
            model_cfg['backbone'].pop('init_cfg', None)
            model_cfg['backbone'].pop('pretrained', None)
        _sync_bn_to_bn(model_cfg)
        register_all_modules(init_default_scope=False)
        with warnings.catch_warnings():  # about the decode head's training loss, which is never used here
            warnings.filterwarnings('ignore', message='.*build_loss.*deprecated', category=UserWarning)
            warnings.filterwarnings('ignore', message='.*avg_non_ignore', category=UserWarning)
            self.model = MODELS.build(model_cfg)
        if not hasattr(self.model, 'encode_decode'):
            raise TypeError(f'FrozenDeepLabV3Plus: {type(self.model).__name__} has no encode_decode (need an mmseg '
                            'segmentor such as EncoderDecoder)')
        self.num_classes = int(self.model.decode_head.num_classes)
        self.config = config if isinstance(config, str) else '<dict>'
        self.checkpoint = checkpoint
        if checkpoint is not None:
            self._load(checkpoint, allow_key_mismatch)
        else:
            get_root_logger().warning('FrozenDeepLabV3Plus: random weights (allow_random_init: true, no checkpoint)')

        self.eval()  # before folding: the tracing forward must not touch the BN statistics
        self.folded_batch_norms = 0
        if fold_batch_norm:
            example = torch.rand(1, 3, 64, 64, dtype=next(self.model.parameters()).dtype)
            self.folded_batch_norms = fold_batch_norms(self, example)
        for param in self.parameters():
            param.requires_grad_(False)

    def _load(self, checkpoint, allow_key_mismatch):
        from mmengine.runner import CheckpointLoader
        if '://' not in checkpoint and not osp.isfile(osp.expanduser(checkpoint)):
            raise FileNotFoundError(
                f'FrozenDeepLabV3Plus: checkpoint {checkpoint!r} (option checkpoint) does not exist')
        state, _ = unwrap_state_dict(CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu'), checkpoint)
        state = {k: v for k, v in state.items() if not k.startswith('auxiliary_head.')}
        own = self.model.state_dict()
        missing = sorted(k for k in own if k not in state)
        unexpected = sorted(k for k in state if k not in own)
        shape = sorted(f'{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}' for k, v in own.items()
                       if k in state and state[k].shape != v.shape)
        logger = get_root_logger()
        logger.info(f'FrozenDeepLabV3Plus: loaded {checkpoint} ({len(own) - len(missing)} of {len(own)} tensors)')
        for label, keys in (('missing keys', missing), ('unexpected keys', unexpected), ('shape mismatch', shape)):
            if keys:
                logger.warning(f'FrozenDeepLabV3Plus: checkpoint {checkpoint}: {label}: {keys}')
        if (missing or unexpected or shape) and not allow_key_mismatch:
            raise RuntimeError(f'FrozenDeepLabV3Plus: checkpoint {checkpoint} does not match the config '
                               f'{self.config}: missing {missing}, unexpected {unexpected}, shape mismatch {shape}; '
                               'set allow_key_mismatch: true to load the matching part anyway')
        bad_shape = {s.split(':')[0] for s in shape}
        self.model.load_state_dict({k: v for k, v in state.items() if k in own and k not in bad_shape}, strict=False)

    def train(self, mode=True):
        """Stay in eval mode whatever the parent asks (frozen network)."""
        return super().train(False)

    def normalize(self, x):
        """RGB [0, 1] -> the input the network was trained on (0-255, mean/std of the config)."""
        if x.dim() != 4 or x.size(1) != 3:
            raise ValueError(f'FrozenDeepLabV3Plus expects an (N, 3, H, W) RGB tensor, got {tuple(x.shape)}')
        param = next(self.model.parameters())
        x = x.to(param.dtype)
        if not self.rgb_input:
            x = x.flip(1)
        return (x * 255.0 - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x):
        height, width = x.shape[-2:]
        metas = [dict(img_shape=(height, width), pad_shape=(height, width), ori_shape=(height, width))] * x.size(0)
        return self.model.encode_decode(self.normalize(x), metas)

    def extra_repr(self):
        return (f'config={self.config!r}, checkpoint={self.checkpoint!r}, num_classes={self.num_classes}, '
                f'folded_batch_norms={self.folded_batch_norms}')
