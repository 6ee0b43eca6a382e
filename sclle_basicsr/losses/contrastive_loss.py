"""L_c of SCL-LLE (Eq. 2-5): triplet hinges on VGG Gram matrices and on the RGB-mean map."""
import torch
from basicsr.utils.registry import LOSS_REGISTRY

from sclle_basicsr.losses.precision import as_float32, float32_math
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

    ``forward(pred, positive, *, negative=None)``: (N, 3, H, W) RGB [0, 1] tensors of the same batch size and
    spatial size (the mean term compares pixel maps); ``negative`` (keyword) may be a list of such tensors.  The
    references' features are computed without autograd.  ``vgg``: options of the extractor built on first standalone
    use (see :class:`~sclle_basicsr.archs.vgg_arch.FrozenVGG16Features`); inside SCLLosses the shared one is used.

    In a stock BasicSR model (``pixel_opt``, called ``loss(output, gt)``) gt is the positive: with
    ``use_negatives: false`` the loss pulls the output's Gram matrices and brightness map towards gt's; with
    negatives it refuses, since such a model passes none.  ``return_pair: true`` for ``perceptual_opt``.
    """
    option_key = 'contrastive_opt'
    log_key = 'l_con'
    input_names = ('pos', 'neg')
    vgg_inputs = ('pos', 'neg')

    def __init__(self,
                 loss_weight=1.0,
                 gram_weight=5.0,
                 mean_weight=10.0,
                 gram_margin=0.04,
                 mean_margin=0.3,
                 gram_layers=('relu1_2', 'relu2_2'),
                 reduction='mean',
                 use_negatives=True,
                 vgg=None,
                 return_pair=False):
        super().__init__(vgg, return_pair)
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

    @property
    def required_inputs(self):
        return frozenset(self.input_names if self.use_negatives else ('pos', ))

    def negatives_of(self, negative):
        """The negatives as a list; ``[]`` with ``use_negatives: false`` (Table 3's ablation without negatives)."""
        if not self.use_negatives:
            if negative is not None:
                raise ValueError('SCLContrastiveLoss: use_negatives is false but negatives were given')
            return []
        return as_negative_list(negative)

    def check_inputs(self, pred, pos=None, neg=None):
        check_image('positive', pos, like=pred)
        negatives = self.negatives_of(neg)
        for k, negative in enumerate(negatives):
            check_image(f'negative[{k}]', negative, like=pred)
        return {'pos': pos, 'neg': negatives}

    def forward(self, pred, positive, *, negative=None):
        if negative is None and self.use_negatives:
            self.refuse_stock_call(
                'negatives (keyword negative=)',
                'Set use_negatives: false to take gt as the positive (the loss then pulls the output towards gt), or '
                'give the triplet loss its negatives: train.contrastive_opt of SRWithSCLLossesModel with '
                'a dataset giving pos and neg (PairedContrastiveDataset), or SCLLLEModel.')
        check_image('pred', pred)
        return self.standalone(pred, self.check_inputs(pred, pos=positive, neg=negative))

    def from_features(self, pred, inputs, feats):
        return self.loss_from_features(pred, feats['pred'], inputs['pos'], feats['pos'], inputs['neg'],
                                       feats.get('neg', []))

    def loss_from_features(self, pred, pred_feats, positive, positive_feats, negatives, negative_feats):
        """The loss from checked inputs and precomputed features ({layer: tensor} dicts; one per negative).

        In float32 whatever the autocast (see :mod:`sclle_basicsr.losses.precision`)."""
        with float32_math(pred.device.type):
            return self._loss_in_float32(as_float32(pred), pred_feats, positive, positive_feats, negatives,
                                         negative_feats)

    def _loss_in_float32(self, pred, pred_feats, positive, positive_feats, negatives, negative_feats):
        grams = {name: gram_matrix(pred_feats[name]) for name in self.vgg_layers}
        pred_mean = pred.mean(dim=1)

        def gram_distance(feats):
            return sum(((grams[name] - gram_matrix(feats[name]))**2).sum(dim=(1, 2)) for name in self.vgg_layers)

        def mean_distance(image):
            return (pred_mean - as_float32(image).mean(dim=1)).abs().mean(dim=(1, 2))

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
