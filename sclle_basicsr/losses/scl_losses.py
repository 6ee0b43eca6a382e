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

from basicsr.archs import build_network
from basicsr.losses import build_loss
from torch import nn

from sclle_basicsr.losses.color_constancy_loss import ColorConstancyLoss
from sclle_basicsr.losses.contrastive_loss import SCLContrastiveLoss
from sclle_basicsr.losses.exposure_control_loss import ExposureControlLoss
from sclle_basicsr.losses.feature_retention_loss import FeatureRetentionLoss
from sclle_basicsr.losses.semantic_brightness_loss import SemanticBrightnessLoss
from sclle_basicsr.losses.vgg_features import build_vgg, check_image, extract_features

# The losses SCLLosses builds; each declares its option key, log key, inputs and VGG layers.
LOSS_TYPES = (SCLContrastiveLoss, SemanticBrightnessLoss, FeatureRetentionLoss, ColorConstancyLoss,
              ExposureControlLoss)


class SCLLosses(nn.Module):
    """The configured SCL-LLE losses, evaluated with shared feature extraction.

    ``SCLLosses(train_opt)`` reads the optional keys ``contrastive_opt``, ``semantic_opt``, ``retention_opt``,
    ``color_opt``, ``exposure_opt`` (BasicSR loss options with ``type``, built with ``basicsr.losses.build_loss``),
    ``vgg_opt`` (options of the one shared :class:`FrozenVGG16Features`; default: the VGG losses' own ``vgg``
    options, which must then agree) and ``segmentor_opt`` (options of the shared
    :class:`FrozenDeepLabV3Plus`; default: the semantic loss's own ``segmentor`` options).  The losses build
    nothing themselves: the shared extractor (with the union of the layers they need) and segmentor are built once
    here and attached to them.

    ``required_inputs``: the names among ``lq, curves, pos, neg, label`` the configured losses need (``curves``
    only when the colour loss has a non-zero ``smooth_weight``).

    ``forward(pred, *, lq=None, curves=None, pos=None, neg=None, label=None)`` -> ``(total, OrderedDict)`` with
    log entries ``l_con``, ``l_sc``, ``l_fr``, ``l_cc``, ``l_exp`` for the configured losses.  ``neg``: a tensor or a
    list of tensors (one per negative source).  A configured loss whose input is missing raises ValueError.  Each
    input is checked once, by the first loss that reads it; the losses then work on the checked inputs.
    """

    def __init__(self, train_opt):
        super().__init__()
        train_opt = train_opt or {}
        self.losses = nn.ModuleDict()
        for cls in LOSS_TYPES:
            if not train_opt.get(cls.option_key):
                continue
            loss = build_loss(train_opt[cls.option_key])
            if not isinstance(loss, cls):
                raise TypeError(f'SCLLosses: {cls.option_key} must build a {cls.__name__} (or subclass), '
                                f'got {type(loss).__name__}')
            if loss.return_pair:
                raise ValueError(f'SCLLosses: {cls.option_key} has return_pair: true, which is for a stock '
                                 "model's perceptual_opt; leave it out here")
            self.losses[cls.option_key[:-len('_opt')]] = loss
        if not self.losses:
            raise ValueError(f'SCLLosses: no loss configured; give at least one of '
                             f'{[cls.option_key for cls in LOSS_TYPES]}')

        vgg_users = [loss for loss in self.losses.values() if loss.vgg_layers]
        self.vgg_layers = tuple(dict.fromkeys(name for loss in vgg_users for name in loss.vgg_layers))
        # input name -> the VGG layers any loss needs of it
        self.reference_layers = {}
        for loss in vgg_users:
            for name in loss.vgg_inputs:
                self.reference_layers[name] = tuple(dict.fromkeys(self.reference_layers.get(name, ()) +
                                                                  tuple(loss.vgg_layers)))
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
        return set().union(*(loss.required_inputs for loss in self.losses.values()))

    def forward(self, pred, *, lq=None, curves=None, pos=None, neg=None, label=None):
        given = dict(lq=lq, curves=curves, pos=pos, neg=neg, label=label)
        for loss in self.losses.values():
            missing = sorted(k for k in loss.required_inputs if given[k] is None)
            if missing:
                raise ValueError(f'SCLLosses: loss {loss.log_key} ({type(loss).__name__}) needs input(s) '
                                 f'{missing}, not given')
        check_image('pred', pred)
        checked = {}
        for loss in self.losses.values():  # every check before any VGG or segmentor work
            unchecked = {k: given[k] for k in loss.input_names if k not in checked}
            checked.update(loss.check_inputs(pred, **unchecked))

        feats = None
        if self.vgg is not None:
            if self.vgg.features[0].weight.device != pred.device:
                self.vgg.to(pred.device)
            # ONE forward of pred with autograd for the union of the layers every VGG loss needs, ONE no-grad
            # pass for every reference (lq, positives, negatives).
            references = {name: (checked[name], layers) for name, layers in self.reference_layers.items()}
            feats = extract_features(self.vgg, pred, self.vgg_layers, references)

        total = 0
        log = OrderedDict()
        for loss in self.losses.values():
            value = loss.from_features(pred, checked, feats)
            total = total + value
            log[loss.log_key] = value.detach()
        return total, log
