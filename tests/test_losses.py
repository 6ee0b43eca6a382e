import pytest
import torch
import yaml
from basicsr.losses import build_loss
from torch import nn

import sclle_basicsr  # noqa: F401  (compat fixes, registration)
from sclle_basicsr.losses.color_constancy_loss import ColorConstancyLoss
from sclle_basicsr.losses.contrastive_loss import SCLContrastiveLoss
from sclle_basicsr.losses.feature_retention_loss import FeatureRetentionLoss
from sclle_basicsr.losses.semantic_brightness_loss import SemanticBrightnessLoss

RAW_RANDOM_VGG = {'weights_format': 'random', 'mean': [0, 0, 0], 'std': [1, 1, 1]}
D = torch.float64


def healthy_(extractor, seed=0):
    """Fan-in scaled random weights (torchvision's fan-out init makes deep features vanish), float64."""
    torch.manual_seed(seed)
    for module in extractor.features:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode='fan_in', nonlinearity='relu')
            nn.init.uniform_(module.bias, -0.1, 0.1)
    return extractor.double()


def manual_features(extractor, image, upto):
    """Hand-run of the layers on one image (C, H, W), returning {relu name: (C, h, w)}; no extract_many."""
    names = {3: 'relu1_2', 8: 'relu2_2', 15: 'relu3_3', 22: 'relu4_3'}
    h = image.unsqueeze(0)  # the raw-input extractor: mean 0, std 1
    out = {}
    for idx in range(upto + 1):
        h = extractor.features[idx](h)
        if idx in names:
            out[names[idx]] = h[0]
    return out


class StubSegmentor(nn.Module):
    """A frozen 1x1-conv 'segmentor' (num_classes attribute, full-resolution logits) for the loss maths."""

    def __init__(self, num_classes=4):
        super().__init__()
        self.num_classes = num_classes
        self.conv = nn.Conv2d(3, num_classes, 1)
        nn.init.normal_(self.conv.weight, std=2.0)
        self.requires_grad_(False)

    def forward(self, x):
        return self.conv(x)


def test_all_built_by_name_from_yaml():
    opts = yaml.safe_load("""
        - {type: SCLContrastiveLoss, loss_weight: 0.5, vgg: {weights_format: random}}
        - {type: SemanticBrightnessLoss, ce_weight: 0}
        - {type: FeatureRetentionLoss, layer: relu3_3, vgg: {weights_format: random}}
        - {type: ColorConstancyLoss, smooth_weight: 100}
    """)
    losses = [build_loss(opt) for opt in opts]
    assert [type(loss) for loss in losses] == [SCLContrastiveLoss, SemanticBrightnessLoss, FeatureRetentionLoss,
                                               ColorConstancyLoss]
    assert losses[0].loss_weight == 0.5 and losses[2].layer == 'relu3_3' and losses[3].smooth_weight == 100
    assert losses[0]._extractor is None  # built lazily, on first standalone use


# ----------------------------------------------------------------------------------------------- contrastive
def _triplets(seed=1, size=8):
    torch.manual_seed(seed)
    pred = torch.rand(2, 3, size, size, dtype=D)
    pos = torch.rand(2, 3, size, size, dtype=D)
    neg_under = (pred * 0.9 + 0.05 * torch.rand_like(pred))  # close to pred: hinges active
    neg_over = torch.rand(2, 3, size, size, dtype=D) * 0.2 + 0.8
    return pred, pos, [neg_under, neg_over]


def _manual_contrastive(loss, pred, pos, negs):
    ext = loss.extractor
    total = 0.0
    for i in range(pred.size(0)):
        feats = {k: manual_features(ext, x[i], 8) for k, x in [('h', pred), ('p', pos)] + [
            (f'n{j}', n) for j, n in enumerate(negs)]}

        def gram(f):
            c, h, w = f.shape
            m = f.reshape(c, h * w)
            return m @ m.t() / (c * h * w)

        def d_gram(a, b):
            return sum(float(((gram(feats[a][layer]) - gram(feats[b][layer]))**2).sum())
                       for layer in ('relu1_2', 'relu2_2'))

        def d_mean(a, b):
            return float((a[i].mean(0) - b[i].mean(0)).abs().mean())

        hinge_g = sum(max(d_gram('h', 'p') - d_gram('h', f'n{j}') + 0.04, 0) for j in range(len(negs))) / len(negs)
        hinge_m = sum(max(d_mean(pred, pos) - d_mean(pred, n) + 0.3, 0) for n in negs) / len(negs)
        total += 5 * hinge_g + 10 * hinge_m
    return total / pred.size(0)


def test_contrastive_matches_hand_computation():
    loss = build_loss({'type': 'SCLContrastiveLoss', 'vgg': RAW_RANDOM_VGG})
    healthy_(loss.extractor)
    pred, pos, negs = _triplets()
    expected = _manual_contrastive(loss, pred, pos, negs)
    assert expected > 0
    assert float(loss(pred, pos, negative=negs)) == pytest.approx(expected, rel=1e-9)
    # one negative given as a tensor
    one_negative = _manual_contrastive(loss, pred, pos, negs[:1])
    assert float(loss(pred, pos, negative=negs[0])) == pytest.approx(one_negative, rel=1e-9)
    loss.reduction = 'sum'
    assert float(loss(pred, pos, negative=negs)) == pytest.approx(2 * expected, rel=1e-9)


def test_contrastive_gradcheck():
    loss = SCLContrastiveLoss(vgg=RAW_RANDOM_VGG)
    healthy_(loss.extractor)
    pred, pos, negs = _triplets(size=8)
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: loss(p, pos, negative=negs), (pred, ), eps=1e-6, atol=1e-5,
                                    fast_mode=True)


def test_contrastive_bad_inputs():
    loss = SCLContrastiveLoss(vgg=RAW_RANDOM_VGG)
    pred = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r'negative\[1\].*batch size 1'):
        loss(pred, torch.rand(2, 3, 8, 8), negative=[torch.rand(2, 3, 8, 8), torch.rand(1, 3, 8, 8)])
    with pytest.raises(ValueError, match='positive has size'):
        loss(pred, torch.rand(2, 3, 16, 16), negative=torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match='empty'):
        loss(pred, torch.rand(2, 3, 8, 8), negative=[])
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\)'):
        loss(torch.rand(2, 1, 8, 8), torch.rand(2, 3, 8, 8), negative=torch.rand(2, 3, 8, 8))
    with pytest.raises(TypeError):
        loss(pred, pred, pred)  # negatives are keyword-only
    with pytest.raises(ValueError, match='weights_path'):
        SCLContrastiveLoss()(pred, pred, negative=pred)  # default: Caffe weights, which need a file


# ------------------------------------------------------------------------------------------------- retention
def test_feature_retention_matches_hand_computation_and_gradcheck():
    loss = build_loss({'type': 'FeatureRetentionLoss', 'vgg': RAW_RANDOM_VGG})
    healthy_(loss.extractor)
    torch.manual_seed(2)
    pred, lq = torch.rand(2, 3, 16, 16, dtype=D), torch.rand(2, 3, 16, 16, dtype=D) * 0.3
    sq = [((manual_features(loss.extractor, pred[i], 22)['relu4_3'] -
            manual_features(loss.extractor, lq[i], 22)['relu4_3'])**2) for i in range(2)]
    expected = float(sum(s.sum() for s in sq)) / (2 * sq[0].numel())
    assert expected > 0
    assert float(loss(pred, lq)) == pytest.approx(expected, rel=1e-9)

    small = FeatureRetentionLoss(layer='relu2_2', loss_weight=3.0, vgg=RAW_RANDOM_VGG)
    healthy_(small.extractor)
    pred = torch.rand(1, 3, 8, 8, dtype=D, requires_grad=True)
    lq = torch.rand(1, 3, 8, 8, dtype=D)
    assert torch.autograd.gradcheck(lambda p: small(p, lq), (pred, ), eps=1e-6, atol=1e-5, fast_mode=True)
    with pytest.raises(ValueError, match='reference has size'):
        small(pred, torch.rand(1, 3, 16, 16, dtype=D))


# -------------------------------------------------------------------------------------------------- semantic
def _manual_brightness(pred, label):
    total = 0.0
    for i in range(pred.size(0)):
        b = pred[i].mean(0)
        valid = label[i] != 255
        acc = 0.0
        for s in label[i][valid].unique():
            mask = label[i] == s
            acc += float(((b[mask] - b[mask].mean())**2).sum())
        total += acc / max(int(valid.sum()), 1)
    return total / pred.size(0)


def _semantic_case(seed=3):
    torch.manual_seed(seed)
    pred = torch.rand(2, 3, 6, 5, dtype=D)
    label = torch.randint(0, 4, (2, 6, 5))
    label[0, :2] = 255
    label[1, label[1] == 2] = 255
    return pred, label


def test_semantic_brightness_matches_hand_computation():
    pred, label = _semantic_case()
    brightness_only = build_loss({'type': 'SemanticBrightnessLoss', 'ce_weight': 0})
    assert float(brightness_only(pred, label=label)) == pytest.approx(_manual_brightness(pred, label), rel=1e-9)
    loss = build_loss({'type': 'SemanticBrightnessLoss', 'ce_weight': 0.5, 'loss_weight': 2.0})
    seg = StubSegmentor().double()
    loss.attach_segmentor(seg)
    logits = seg(pred)
    log_p = logits.log_softmax(1)
    picks = [float(-log_p[i, label[i, y, x], y, x]) for i in range(2) for y in range(6) for x in range(5)
             if label[i, y, x] != 255]
    expected = 2.0 * (_manual_brightness(pred, label) + 0.5 * sum(picks) / len(picks))
    assert float(loss(pred, label=label)) == pytest.approx(expected, rel=1e-9)
    assert float(loss(pred, label=label.unsqueeze(1))) == pytest.approx(expected, rel=1e-9)  # (N, 1, H, W) label


def test_semantic_gradcheck_and_detach_segmentation():
    pred, label = _semantic_case()
    loss = SemanticBrightnessLoss()
    loss.attach_segmentor(StubSegmentor().double())
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: loss(p, label=label), (pred, ), eps=1e-6, atol=1e-6)
    # detach_segmentation (released code): the CE adds to the value but not to the gradient
    detached = SemanticBrightnessLoss(detach_segmentation=True)
    detached.attach_segmentor(loss.segmentor)
    brightness = SemanticBrightnessLoss(ce_weight=0)
    g_full, = torch.autograd.grad(loss(pred, label=label), pred)
    g_det, = torch.autograd.grad(detached(pred, label=label), pred)
    g_bri, = torch.autograd.grad(brightness(pred, label=label), pred)
    torch.testing.assert_close(g_det, g_bri)
    assert not torch.allclose(g_full, g_bri)
    assert detached(pred, label=label).item() == pytest.approx(loss(pred, label=label).item())


def test_semantic_bad_labels():
    loss = SemanticBrightnessLoss()
    loss.attach_segmentor(StubSegmentor(num_classes=4))
    pred = torch.rand(1, 3, 4, 4)
    with pytest.raises(ValueError, match='does not match pred'):
        loss(pred, label=torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r'\[0, 4\) or 255'):
        loss(pred, label=torch.full((1, 4, 4), 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r'\[0, 4\) or 255'):
        loss(pred, label=torch.full((1, 4, 4), -1, dtype=torch.long))
    with pytest.raises(ValueError, match='non-integer'):
        loss(pred, label=torch.full((1, 4, 4), 0.5))
    with pytest.raises(ValueError, match='segmentor predicts'):
        SemanticBrightnessLoss(num_classes=19).attach_segmentor(StubSegmentor(num_classes=4))
    # all pixels ignored: finite zero loss
    assert float(loss(pred, label=torch.full((1, 4, 4), 255, dtype=torch.long))) == 0
    with pytest.raises(ValueError, match='allow_random_init'):
        # the default segmentor needs a checkpoint
        SemanticBrightnessLoss()(pred, label=torch.zeros(1, 4, 4, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------- colour
def _manual_color(pred, curves):
    col = 0.0
    for i in range(pred.size(0)):
        m = [float(pred[i, c].mean()) for c in range(3)]
        d = [(m[0] - m[1])**2, (m[0] - m[2])**2, (m[1] - m[2])**2]
        col += (d[0]**2 + d[1]**2 + d[2]**2)**0.5
    col /= pred.size(0)
    n, k, h, w = curves.shape
    tv_h = sum(float(curves[b, c, y + 1, x] - curves[b, c, y, x])**2 for b in range(n) for c in range(k)
               for y in range(h - 1) for x in range(w))
    tv_w = sum(float(curves[b, c, y, x + 1] - curves[b, c, y, x])**2 for b in range(n) for c in range(k)
               for y in range(h) for x in range(w - 1))
    return col, 2 * (tv_h / ((h - 1) * w) + tv_w / (h * (w - 1))) / n


def test_color_constancy_matches_hand_computation_and_gradcheck():
    torch.manual_seed(4)
    pred = torch.rand(2, 3, 4, 5, dtype=D)
    pred[:, 0] *= 0.5
    curves = torch.rand(2, 6, 4, 5, dtype=D) * 2 - 1
    col, tv = _manual_color(pred, curves)
    loss = build_loss({'type': 'ColorConstancyLoss'})
    assert float(loss(pred, curves=curves)) == pytest.approx(8 * col + 200 * tv, rel=1e-9)
    assert float(ColorConstancyLoss(smooth_weight=0)(pred)) == pytest.approx(8 * col, rel=1e-9)
    with pytest.raises(ValueError, match='needs the curve maps'):
        loss(pred)  # the smoothness term is never dropped silently
    pred.requires_grad_(True)
    curves.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, a: loss(p, curves=a), (pred, curves), eps=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match='3 \\* n'):
        loss(pred, curves=curves[:, :4])
    with pytest.raises(ValueError, match='batch'):
        loss(pred, curves=curves[:1])


def test_color_constancy_grey_image_has_finite_gradient():
    grey = torch.full((2, 3, 4, 4), 0.5, requires_grad=True)
    loss = ColorConstancyLoss(smooth_weight=0)
    value = loss(grey)
    value.backward()
    assert float(value) == 0 and torch.isfinite(grey.grad).all() and float(grey.grad.abs().sum()) == 0
    # the released form, plain sqrt, gives NaN here
    released = grey.detach().clone().requires_grad_(True)
    m = released.mean(dim=(2, 3))
    d = [(m[:, 0] - m[:, 1])**2, (m[:, 0] - m[:, 2])**2, (m[:, 1] - m[:, 2])**2]
    torch.pow(d[0]**2 + d[1]**2 + d[2]**2, 0.5).mean().backward()
    assert torch.isnan(released.grad).all()


def test_contrastive_without_negatives_drops_the_negative_distance():
    """use_negatives: false (Table 3's ablation) equals the full loss with d(H, N) = 0, i.e. a negative equal to H."""
    from basicsr.losses import build_loss
    torch.manual_seed(0)
    pred, pos = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    vgg = {'weights_format': 'random'}
    with_neg = build_loss({'type': 'SCLContrastiveLoss', 'vgg': vgg})
    without = build_loss({'type': 'SCLContrastiveLoss', 'vgg': vgg, 'use_negatives': False})
    without.attach_extractor(with_neg._extractor_on(pred))
    torch.testing.assert_close(without(pred, pos), with_neg(pred, pos, negative=pred.clone()))
    with pytest.raises(ValueError, match='use_negatives is false'):
        without(pred, pos, negative=pos)


# ------------------------------------------------------------------------------------------- label-free terms
def test_whole_image_brightness_is_the_variance_of_the_image_brightness():
    torch.manual_seed(5)
    pred = torch.rand(2, 3, 6, 5, dtype=D, requires_grad=True)
    loss = build_loss({'type': 'SemanticBrightnessLoss', 'ce_weight': 0, 'whole_image': True, 'loss_weight': 3.0})
    assert loss.required_inputs == frozenset() and not loss.needs_segmentor
    brightness = pred.detach().mean(dim=1)
    expected = 3.0 * float(((brightness - brightness.mean(dim=(1, 2), keepdim=True))**2).mean())
    assert float(loss(pred)) == pytest.approx(expected, rel=1e-9)
    # a label map, if given, is not read: the whole image is one class
    assert float(loss(pred, label=torch.randint(0, 4, (2, 6, 5)))) == pytest.approx(expected, rel=1e-9)
    assert float(loss(pred, pred.flip(0))) == pytest.approx(expected, rel=1e-9)  # a stock call: gt is not read
    # it pulls pixels brighter than the mean down and darker ones up
    grad, = torch.autograd.grad(loss(pred), pred)
    above = (brightness > brightness.mean(dim=(1, 2), keepdim=True)).unsqueeze(1).expand_as(grad)
    assert (grad[above] > 0).all() and (grad[~above] < 0).all()
    assert torch.autograd.gradcheck(lambda p: loss(p), (pred, ), eps=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match='set ce_weight: 0'):
        SemanticBrightnessLoss(whole_image=True)


def test_exposure_control_matches_hand_computation_and_gradcheck():
    torch.manual_seed(6)
    pred = torch.rand(2, 3, 9, 8, dtype=D)
    loss = build_loss({'type': 'ExposureControlLoss', 'patch_size': 4, 'level': 0.7, 'loss_weight': 2.0})
    grey = pred.mean(dim=1)
    patches = [float(grey[i, y:y + 4, x:x + 4].mean()) for i in range(2) for y in (0, 4) for x in (0, 4)]
    expected = 2.0 * sum((p - 0.7)**2 for p in patches) / len(patches)  # the partial ninth row is left out
    assert float(loss(pred)) == pytest.approx(expected, rel=1e-9)
    assert float(loss(pred, pred.flip(0))) == pytest.approx(expected, rel=1e-9)  # gt (a stock call) is not read
    pred.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: loss(p), (pred, ), eps=1e-6, atol=1e-6)
    assert float(build_loss({'type': 'ExposureControlLoss', 'patch_size': 1, 'level': 0.5})(
        torch.full((1, 3, 2, 2), 0.5))) == 0


def test_exposure_control_bad_options_and_inputs():
    with pytest.raises(ValueError, match='level must be in'):
        build_loss({'type': 'ExposureControlLoss', 'level': 1.5})
    with pytest.raises(ValueError, match='patch_size must be a positive integer'):
        build_loss({'type': 'ExposureControlLoss', 'patch_size': 0})
    with pytest.raises(ValueError, match='smaller than one patch'):
        build_loss({'type': 'ExposureControlLoss'})(torch.rand(1, 3, 8, 32))
