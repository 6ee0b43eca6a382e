"""L_c of SCL-LLE (Eq. 2-5): triplet hinges on VGG Gram matrices and on the RGB-mean map."""
import torch
from basicsr.utils.registry import LOSS_REGISTRY

from sclle_basicsr.losses.vgg_features import VGGFeatureLossBase, as_negative_list, check_image, gram_matrix

_REDUCTIONS = ('mean', 'sum')


@LOSS_REGISTRY.register()
class SCLContrastiveLoss(VGGFeatureLossBase):
    """Contrastive brightness loss: pull the enhanced image towards a normal-light positive, away from negatives.

    For sample i of ``pred`` (H), positive i (P) and negative i (N):

    * Gram term: G = F F^T / (C H W) of the VGG features at ``gram_layers`` (relu1_2, relu2_2);
      d_G(H, X) = sum over layers of the sum of squared entry differences of the Gram matrices;
      hinge max(d_G(H, P) - d_G(H, N) + gram_margin, 0), gram_margin = alpha = 0.04.
    * Mean term: E(X) = per-pixel mean over RGB (an H x W map); d_E(H, X) = mean |E(H) - E(X)|;
      hinge max(d_E(H, P) - d_E(H, N) + mean_margin, 0), mean_margin = beta = 0.3.

    Per triplet: gram_weight * Gram hinge + mean_weight * mean hinge (5 and 10, the released code's weights).
    Several negatives (e.g. under- and over-exposed): each has its own hinges, averaged over the negatives.
    ``reduction`` 'mean' averages the per-sample losses over the batch, 'sum' sums them; times ``loss_weight``.

    ``forward(pred, positive, negative)``: (N, 3, H, W) RGB [0, 1] tensors of the same batch size and spatial size
    (the mean term compares pixel maps); ``negative`` may be a list of such tensors.  The references' features
    are computed without autograd.  ``vgg``: options of the extractor built on first standalone use (see
    :class:`~sclle_basicsr.archs.vgg_arch.FrozenVGG16Features`); inside SCLLosses the shared one is used.
    """

    def __init__(self,
                 loss_weight=1.0,
                 gram_weight=5.0,
                 mean_weight=10.0,
                 gram_margin=0.04,
                 mean_margin=0.3,
                 gram_layers=('relu1_2', 'relu2_2'),
                 reduction='mean',
                 use_negatives=True,
                 vgg=None):
        super().__init__(vgg)
        self.use_negatives = use_negatives
        if reduction not in _REDUCTIONS:
            raise ValueError(f'SCLContrastiveLoss: reduction must be one of {_REDUCTIONS}, got {reduction!r}')
        self.vgg_layers = (gram_layers, ) if isinstance(gram_layers, str) else tuple(gram_layers)
        if not self.vgg_layers:
            raise ValueError('SCLContrastiveLoss: gram_layers is empty')
        self.loss_weight = loss_weight
        self.gram_weight = gram_weight
        self.mean_weight = mean_weight
        self.gram_margin = gram_margin
        self.mean_margin = mean_margin
        self.reduction = reduction

    def negatives_of(self, negative):
        """The negatives as a list; ``[]`` with ``use_negatives: false`` (Table 3's ablation without negatives)."""
        if not self.use_negatives:
            if negative is not None:
                raise ValueError('SCLContrastiveLoss: use_negatives is false but negatives were given')
            return []
        return as_negative_list(negative)

    def check_inputs(self, pred, positive, negatives):
        check_image('pred', pred)
        check_image('positive', positive, like=pred)
        for k, neg in enumerate(negatives):
            check_image(f'negative[{k}]', neg, like=pred)

    def forward(self, pred, positive, negative=None):
        negatives = self.negatives_of(negative)
        self.check_inputs(pred, positive, negatives)
        extractor = self._extractor_on(pred)
        pred_feats = extractor(pred, self.vgg_layers)
        with torch.no_grad():  # references are constants: no autograd graph, one batched pass
            ref_feats = extractor.extract_many([(x, self.vgg_layers) for x in [positive] + negatives])
        return self.loss_from_features(pred, pred_feats, positive, ref_feats[0], negatives, ref_feats[1:])

    def loss_from_features(self, pred, pred_feats, positive, positive_feats, negatives, negative_feats):
        """The loss from precomputed features ({layer: tensor} dicts; one per negative)."""
        negatives = self.negatives_of(negatives or None)
        self.check_inputs(pred, positive, negatives)
        grams = {name: gram_matrix(pred_feats[name]) for name in self.vgg_layers}
        pred_mean = pred.mean(dim=1)

        def gram_distance(feats):
            return sum(((grams[name] - gram_matrix(feats[name]))**2).sum(dim=(1, 2)) for name in self.vgg_layers)

        def mean_distance(image):
            return (pred_mean - image.mean(dim=1)).abs().mean(dim=(1, 2))

        pos_gram, pos_mean = gram_distance(positive_feats), mean_distance(positive)
        if negatives:
            gram_hinge = sum(torch.relu(pos_gram - gram_distance(feats) + self.gram_margin)
                             for feats in negative_feats) / len(negatives)
            mean_hinge = sum(torch.relu(pos_mean - mean_distance(neg) + self.mean_margin)
                             for neg in negatives) / len(negatives)
        else:  # without negatives d(H, N) drops out: the hinges only pull towards the positive
            gram_hinge = torch.relu(pos_gram + self.gram_margin)
            mean_hinge = torch.relu(pos_mean + self.mean_margin)
        per_sample = self.gram_weight * gram_hinge + self.mean_weight * mean_hinge
        loss = per_sample.mean() if self.reduction == 'mean' else per_sample.sum()
        return self.loss_weight * loss
