"""L_sc of SCL-LLE (Eq. 6-7): brightness consistency inside each labelled class plus a frozen segmentor's CE."""
import copy

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY

from sclle_basicsr.losses.precision import as_float32, float32_math
from sclle_basicsr.losses.scl_loss_base import SCLLossBase
from sclle_basicsr.losses.vgg_features import check_image


def prepare_label(label, pred, ignore_index=255, num_classes=None, check_values=True):
    """Check a semantic label map against ``pred`` and return it as (N, H, W) int64.

    The shape is always checked; ``check_values`` also checks that the ids are integers in [0, ``num_classes``) or
    ``ignore_index``.  Those checks read values back from the device (a synchronisation on CUDA), so a model whose
    dataset already checked every label leaves them out (:meth:`SemanticBrightnessLoss.trust_labels_checked_by`).
    """
    if not torch.is_tensor(label):
        raise ValueError(f'label must be a tensor, got {type(label).__name__}')
    if label.dim() == 4 and label.size(1) == 1:
        label = label[:, 0]
    if label.dim() != 3:
        raise ValueError(f'label must be (N, H, W) or (N, 1, H, W), got {tuple(label.shape)}')
    if label.size(0) != pred.size(0) or label.shape[-2:] != pred.shape[-2:]:
        raise ValueError(f'label {tuple(label.shape)} does not match pred (N, H, W) = '
                         f'{(pred.size(0), ) + tuple(pred.shape[-2:])}')
    if check_values and label.is_floating_point():
        if not torch.equal(label, label.round()):
            raise ValueError('label holds non-integer values; give class indices')
    label = label.long()
    if not check_values:
        return label
    valid = label != ignore_index
    if valid.any():
        low, high = int(label[valid].min()), int(label[valid].max())
        if low < 0 or (num_classes is not None and high >= num_classes):
            raise ValueError(f'label values must be in [0, {num_classes if num_classes is not None else "inf"}) '
                             f'or {ignore_index} (ignored); found values in [{low}, {high}]')
    return label


def brightness_consistency(pred, label, ignore_index=255, num_classes=None):
    """Per image: sum over classes present of sum_i (B_i - B_s)^2, divided by the number of labelled pixels;
    B = mean over RGB, B_s = mean of B over class s (Eq. 6).  Averaged over the batch (an image without labelled
    pixels counts 0).

    In float32 whatever the autocast (a class's sum over a 384x384 crop passes fp16's 65504).  ``num_classes``
    sizes the per-class sums; without it the largest id is read back from the device.
    """
    with float32_math(pred.device.type):
        n = pred.size(0)
        brightness = as_float32(pred).mean(dim=1).reshape(n, -1)
        valid = (label != ignore_index).reshape(n, -1)
        index = torch.where(valid, label.reshape(n, -1), torch.zeros_like(label.reshape(n, -1)))
        weight = valid.to(brightness.dtype)
        bins = num_classes if num_classes is not None else int(index.max()) + 1
        sums = brightness.new_zeros(n, bins).scatter_add(1, index, brightness * weight)
        counts = brightness.new_zeros(n, bins).scatter_add(1, index, weight)
        class_mean = sums / counts.clamp(min=1)
        squared = (brightness - class_mean.gather(1, index))**2 * weight
        return (squared.sum(dim=1) / weight.sum(dim=1).clamp(min=1)).mean()


@LOSS_REGISTRY.register()
class SemanticBrightnessLoss(SCLLossBase):
    """loss_weight * (brightness consistency + ce_weight * CE(segmentor(pred), label)), Eq. 7.

    Brightness term: :func:`brightness_consistency`.  CE: cross-entropy (``ignore_index`` 255, mean over the
    labelled pixels) of the frozen segmentor's full-resolution logits of ``pred``; its gradient reaches ``pred``
    unless ``detach_segmentation`` (the released code's behaviour, where the CE is a constant).  ``ce_weight``
    default 1.0: Eq. 7 adds the two terms with unit weights; 0 disables the CE and the segmentor.

    ``forward(pred, *, label)``: pred (N, 3, H, W) RGB [0, 1]; label (N, H, W) or (N, 1, H, W) class indices of the
    same size, 255 = ignore, others in [0, num_classes) (num_classes: the segmentor's, or the option when the CE
    is off).  ``segmentor``: options of the :class:`FrozenDeepLabV3Plus` built on first standalone use; inside
    SCLLosses the shared one is attached.  With labels, a stock BasicSR model's ``loss(output, gt)`` is refused: it has
    no label maps (use ``train.semantic_opt`` of SRWithSCLLossesModel).

    ``whole_image: true`` (with ``ce_weight: 0``) needs no label map: the whole image is one class, so the term is the
    variance of the brightness over the image.  This is what the released code's per-class term (L_segexp) becomes
    where nothing is labelled; it pulls highlights down and shadows up, and stands in for L_sc where no segmentor
    checkpoint and no labels are at hand.  It reads no gt either, so a stock model's ``loss(output, gt)`` may use it.
    """
    option_key = 'semantic_opt'
    log_key = 'l_sc'
    input_names = ('label', )

    def __init__(self,
                 loss_weight=1.0,
                 ce_weight=1.0,
                 ignore_index=255,
                 detach_segmentation=False,
                 num_classes=None,
                 segmentor=None,
                 whole_image=False,
                 return_pair=False):
        super().__init__(return_pair)
        if whole_image and ce_weight:
            raise ValueError('SemanticBrightnessLoss: whole_image: true has no label maps for the CE; set ce_weight: 0')
        self.whole_image = whole_image
        self.loss_weight = loss_weight
        self.ce_weight = ce_weight
        self.ignore_index = ignore_index
        self.detach_segmentation = detach_segmentation
        self.num_classes = num_classes
        self.segmentor_opt = segmentor
        self.register_module('_segmentor', None)
        self._labels_checked_for = None

    @property
    def required_inputs(self):
        return frozenset() if self.whole_image else frozenset(self.input_names)

    @property
    def needs_segmentor(self):
        return bool(self.ce_weight)

    @property
    def segmentor(self):
        """The segmentor, built now from the ``segmentor`` options if neither built nor attached yet."""
        if self._segmentor is None:
            opt = copy.deepcopy(dict(self.segmentor_opt or {}))
            self._segmentor = ARCH_REGISTRY.get(opt.pop('type', 'FrozenDeepLabV3Plus'))(**opt)
            self._check_classes(self._segmentor)
        return self._segmentor

    def _check_classes(self, segmentor):
        if self.num_classes is not None and segmentor.num_classes != self.num_classes:
            raise ValueError(f'SemanticBrightnessLoss: num_classes {self.num_classes} but the segmentor predicts '
                             f'{segmentor.num_classes} classes')

    def attach_segmentor(self, segmentor):
        self._check_classes(segmentor)
        self._segmentor = segmentor

    @property
    def label_classes(self):
        """The number of classes label ids must stay under: the segmentor's, or the option when the CE is off."""
        if self.whole_image:
            return 1
        return self.segmentor.num_classes if self.needs_segmentor else self.num_classes

    def trust_labels_checked_by(self, num_classes, ignore_index):
        """A dataset checks every label it reads against ``(num_classes, ignore_index)``: when these are this loss's
        own, :meth:`check_inputs` checks only the labels' shape, not their ids again (no device-to-host
        synchronisation per step).  Standalone calls are checked as always."""
        self._labels_checked_for = (num_classes, ignore_index)

    def check_inputs(self, pred, label=None):
        if self.whole_image:  # one class, the whole image; a given label map is not read
            return {'label': torch.zeros((pred.size(0), ) + tuple(pred.shape[-2:]), dtype=torch.long,
                                         device=pred.device)}
        if label is None:
            raise ValueError('SemanticBrightnessLoss needs a label map (keyword label=)')
        num_classes = self.label_classes
        checked = self._labels_checked_for == (num_classes, self.ignore_index)
        return {'label': prepare_label(label, pred, self.ignore_index, num_classes, check_values=not checked)}

    def forward(self, pred, target=None, *, label=None):
        if target is not None and not self.whole_image:
            self.refuse_stock_call(
                'a semantic label map (keyword label=)',
                'Put it under train.semantic_opt of SRWithSCLLossesModel with a dataset that gives '
                'label (PairedContrastiveDataset with dataroot_label), or use SCLLLEModel.')
        check_image('pred', pred)
        return self.as_output(self.from_features(pred, self.check_inputs(pred, label=label), None))

    def from_features(self, pred, inputs, feats):
        label = inputs['label']
        loss = brightness_consistency(pred, label, self.ignore_index, self.label_classes)
        if self.needs_segmentor:
            segmentor = self.segmentor
            if next(segmentor.parameters()).device != pred.device:
                segmentor.to(pred.device)
            logits = segmentor(pred.detach() if self.detach_segmentation else pred)  # under the caller's autocast
            with float32_math(pred.device.type):
                # the mean over the labelled pixels, 0 when there are none (the mean would be NaN), without asking
                # the device whether there are any
                labelled = (label != self.ignore_index).sum()
                ce = F.cross_entropy(as_float32(logits), label, ignore_index=self.ignore_index,
                                     reduction='sum') / labelled.clamp(min=1)
            loss = loss + self.ce_weight * ce
        return self.loss_weight * loss
