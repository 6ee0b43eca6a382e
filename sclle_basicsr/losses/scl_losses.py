"""SCLLosses: the SCL-LLE losses built together, sharing one VGG-16 and one segmentor, for any BasicSR model.

Example train options (YAML)::

    train:
      contrastive_opt: {type: SCLContrastiveLoss, loss_weight: 1.0}
      semantic_opt: {type: SemanticBrightnessLoss, loss_weight: 1.0}
      retention_opt: {type: FeatureRetentionLoss, loss_weight: 1.0}
      color_opt: {type: ColorConstancyLoss, loss_weight: 1.0}
      vgg_opt: {weights_path: ../shared/assets/weights/vgg16_imagenet_caffe_bgr_features.pth,
                weights_format: caffe_bgr}
      segmentor_opt: {checkpoint: /path/to/deeplabv3plus_r50-d8_512x1024_80k_cityscapes.pth}

In a model::

    self.scl_losses = SCLLosses(train_opt).to(self.device)
    l_total, loss_dict = self.scl_losses(output, lq=lq, curves=curves, pos=pos, neg=[under, over], label=label)

See :class:`sclle_basicsr.models.sr_with_scl_losses_model.SRWithSCLLossesModel` for a paired SRModel that adds
them from an ``scl_losses`` block in a few lines.
"""
import copy
from collections import OrderedDict

import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss
from torch import nn

from sclle_basicsr.losses.color_constancy_loss import ColorConstancyLoss
from sclle_basicsr.losses.contrastive_loss import SCLContrastiveLoss
from sclle_basicsr.losses.feature_retention_loss import FeatureRetentionLoss
from sclle_basicsr.losses.semantic_brightness_loss import SemanticBrightnessLoss
from sclle_basicsr.losses.vgg_features import build_vgg, check_image

# option key -> (log key, short name, expected class)
LOSS_SLOTS = OrderedDict([
    ('contrastive_opt', ('l_con', 'contrastive', SCLContrastiveLoss)),
    ('semantic_opt', ('l_sc', 'semantic', SemanticBrightnessLoss)),
    ('retention_opt', ('l_fr', 'retention', FeatureRetentionLoss)),
    ('color_opt', ('l_cc', 'color', ColorConstancyLoss)),
])
INPUT_NAMES = ('lq', 'curves', 'pos', 'neg', 'label')


class SCLLosses(nn.Module):
    """The configured SCL-LLE losses, evaluated with shared feature extraction.

    ``SCLLosses(train_opt)`` reads the optional keys ``contrastive_opt``, ``semantic_opt``, ``retention_opt``,
    ``color_opt`` (BasicSR loss options with ``type``, built with ``basicsr.losses.build_loss``), ``vgg_opt``
    (options of the one shared :class:`FrozenVGG16Features`; default: the VGG losses' own ``vgg`` options, which
    must then agree) and ``segmentor_opt`` (options of the shared :class:`FrozenDeepLabV3Plus`; default: the
    semantic loss's own ``segmentor`` options).  The losses build nothing themselves: the shared extractor (with
    the union of the layers they need) and segmentor are built once here and attached to them.

    ``required_inputs``: the names among ``lq, curves, pos, neg, label`` the configured losses need (``curves``
    only when the colour loss has a non-zero ``smooth_weight``).

    ``forward(pred, *, lq=None, curves=None, pos=None, neg=None, label=None)`` -> ``(total, OrderedDict)`` with
    log entries ``l_con``, ``l_sc``, ``l_fr``, ``l_cc`` for the configured losses.  ``neg``: a tensor or a list of
    tensors (one per negative source).  A configured loss whose input is missing raises ValueError.
    """

    def __init__(self, train_opt):
        super().__init__()
        train_opt = train_opt or {}
        self.losses = nn.ModuleDict()
        self.log_keys = {}
        for opt_key, (log_key, name, cls) in LOSS_SLOTS.items():
            if not train_opt.get(opt_key):
                continue
            loss = build_loss(train_opt[opt_key])
            if not isinstance(loss, cls):
                raise TypeError(f'SCLLosses: {opt_key} must build a {cls.__name__} (or subclass), '
                                f'got {type(loss).__name__}')
            self.losses[name] = loss
            self.log_keys[name] = log_key
        if not self.losses:
            raise ValueError(f'SCLLosses: no loss configured; give at least one of {list(LOSS_SLOTS)}')

        vgg_users = [loss for loss in self.losses.values() if getattr(loss, 'vgg_layers', ())]
        self.vgg_layers = tuple(dict.fromkeys(name for loss in vgg_users for name in loss.vgg_layers))
        self.vgg = None
        if vgg_users:
            vgg_opt = train_opt.get('vgg_opt')
            if vgg_opt is None:
                own = [loss.vgg_opt for loss in vgg_users if loss.vgg_opt is not None]
                if any(opt != own[0] for opt in own[1:]):
                    raise ValueError('SCLLosses: the VGG losses carry different `vgg` options but share one '
                                     'extractor; give the shared options once as vgg_opt')
                vgg_opt = own[0] if own else None
            self.vgg = build_vgg(vgg_opt, self.vgg_layers)  # built once, attached to every VGG loss
            for loss in vgg_users:
                loss.attach_extractor(self.vgg)

        self.segmentor = None
        semantic = self.losses['semantic'] if 'semantic' in self.losses else None
        if semantic is not None and semantic.needs_segmentor:
            seg_opt = copy.deepcopy(dict(train_opt.get('segmentor_opt') or semantic.segmentor_opt or {}))
            seg_opt.setdefault('type', 'FrozenDeepLabV3Plus')
            self.segmentor = build_network(seg_opt)
            semantic.attach_segmentor(self.segmentor)

    @property
    def required_inputs(self):
        needed = set()
        for name, loss in self.losses.items():
            needed |= self._inputs_of(name, loss)
        return needed

    @staticmethod
    def _inputs_of(name, loss):
        if name == 'contrastive':
            return {'pos', 'neg'} if loss.use_negatives else {'pos'}
        if name == 'semantic':
            return {'label'}
        if name == 'retention':
            return {'lq'}
        return {'curves'} if loss.smooth_weight else set()

    def forward(self, pred, *, lq=None, curves=None, pos=None, neg=None, label=None):
        given = dict(lq=lq, curves=curves, pos=pos, neg=neg, label=label)
        for name, loss in self.losses.items():
            missing = sorted(k for k in self._inputs_of(name, loss) if given[k] is None)
            if missing:
                raise ValueError(f'SCLLosses: loss {self.log_keys[name]} ({type(loss).__name__}) needs input(s) '
                                 f'{missing}, not given')
        negatives = self.losses['contrastive'].negatives_of(neg) if 'contrastive' in self.losses else []
        check_image('pred', pred)
        if 'contrastive' in self.losses:  # shapes checked before any VGG work
            self.losses['contrastive'].check_inputs(pred, pos, negatives)
        if 'retention' in self.losses:
            check_image('lq', lq, like=pred)

        pred_feats = ref_feats = None
        if self.vgg is not None:
            if self.vgg.features[0].weight.device != pred.device:
                self.vgg.to(pred.device)
            # Sharing: ONE forward of pred with autograd, for the union of the layers every VGG loss needs
            # (the extractor stops at the deepest of them).
            pred_feats = self.vgg(pred, self.vgg_layers)
            requests = []
            if 'retention' in self.losses:
                requests.append(('lq', lq, self.losses['retention'].vgg_layers))
            if 'contrastive' in self.losses:
                layers = self.losses['contrastive'].vgg_layers
                requests += [('pos', pos, layers)] + [(f'neg{k}', x, layers) for k, x in enumerate(negatives)]
            # ONE no-grad pass for every reference (lq, positives, negatives): they are constants, so no graph
            # is kept; same-size references are concatenated along the batch, and each leaves the batch at its
            # own deepest layer (positives/negatives stop at relu2_2 while lq goes on to relu4_3).
            with torch.no_grad():
                feats = self.vgg.extract_many([(x, layers) for _, x, layers in requests])
            ref_feats = {key: f for (key, _, _), f in zip(requests, feats)}

        total = 0
        log = OrderedDict()
        for name, loss in self.losses.items():
            if name == 'contrastive':
                value = loss.loss_from_features(pred, pred_feats, pos, ref_feats['pos'], negatives,
                                                [ref_feats[f'neg{k}'] for k in range(len(negatives))])
            elif name == 'retention':
                value = loss.loss_from_features(pred_feats, ref_feats['lq'])
            elif name == 'semantic':
                value = loss(pred, label)
            else:
                value = loss(pred, curves)
            total = total + value
            log[self.log_keys[name]] = value.detach()
        return total, log
