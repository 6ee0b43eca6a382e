import pytest
import torch
import yaml
from conftest import TINY_SEGMENTOR_CFG
from torch import nn

import sclle_basicsr  # noqa: F401  (compat fixes, registration)
from sclle_basicsr.archs.segmentor_arch import FrozenDeepLabV3Plus
from sclle_basicsr.archs.vgg_arch import FrozenVGG16Features
from sclle_basicsr.losses.contrastive_loss import SCLContrastiveLoss
from sclle_basicsr.losses.feature_retention_loss import FeatureRetentionLoss
from sclle_basicsr.losses.scl_losses import SCLLosses

VGG_LOSSES_YAML = """
contrastive_opt: {type: SCLContrastiveLoss, loss_weight: 1.0}
retention_opt: {type: FeatureRetentionLoss, loss_weight: 2.0}
color_opt: {type: ColorConstancyLoss, loss_weight: 0.5}
vgg_opt: {weights_format: random}
"""
TINY_SEG = {'allow_random_init': True, 'num_classes': 4, 'cfg_options': TINY_SEGMENTOR_CFG}


def inputs(n=2, size=16, seed=0):
    torch.manual_seed(seed)
    return dict(lq=torch.rand(n, 3, size, size) * 0.2,
                curves=torch.rand(n, 6, size, size) * 2 - 1,
                pos=torch.rand(n, 3, size, size),
                neg=[torch.rand(n, 3, size, size) * 0.1, torch.rand(n, 3, size, size) * 0.1 + 0.9],
                label=torch.randint(0, 4, (n, size, size)))


def test_needs_a_loss_and_reports_required_inputs():
    with pytest.raises(ValueError, match='no loss configured'):
        SCLLosses({'vgg_opt': {'weights_format': 'random'}})
    losses = SCLLosses(yaml.safe_load(VGG_LOSSES_YAML))
    assert losses.required_inputs == {'lq', 'pos', 'neg', 'curves'}
    assert SCLLosses({'color_opt': {'type': 'ColorConstancyLoss', 'smooth_weight': 0}}).required_inputs == set()
    assert SCLLosses({'semantic_opt': {'type': 'SemanticBrightnessLoss', 'ce_weight': 0}}).required_inputs == {'label'}
    with pytest.raises(TypeError, match='contrastive_opt must build a SCLContrastiveLoss'):
        SCLLosses({'contrastive_opt': {'type': 'ColorConstancyLoss'}})


def test_missing_input_is_named():
    losses = SCLLosses(yaml.safe_load(VGG_LOSSES_YAML))
    given = inputs(size=8)
    del given['lq']
    with pytest.raises(ValueError, match=r"l_fr \(FeatureRetentionLoss\) needs input\(s\) \['lq'\]"):
        losses(torch.rand(2, 3, 8, 8), **given)
    with pytest.raises(ValueError, match='batch size 1'):
        losses(torch.rand(2, 3, 8, 8), **dict(inputs(size=8), pos=torch.rand(1, 3, 8, 8)))


def test_one_shared_extractor_built_once(monkeypatch):
    built = []
    original = FrozenVGG16Features.__init__

    def counting_init(self, *args, **kwargs):
        built.append(kwargs.get('layers'))
        original(self, *args, **kwargs)

    monkeypatch.setattr(FrozenVGG16Features, '__init__', counting_init)
    losses = SCLLosses(yaml.safe_load(VGG_LOSSES_YAML))
    assert len(built) == 1 and set(built[0]) == {'relu1_2', 'relu2_2', 'relu4_3'}
    assert losses.losses['contrastive']._extractor is losses.vgg is losses.losses['retention']._extractor
    assert sum(isinstance(m, FrozenVGG16Features) for m in set(losses.modules())) == 1
    with pytest.raises(ValueError, match='different `vgg` options'):
        SCLLosses({'contrastive_opt': {'type': 'SCLContrastiveLoss', 'vgg': {'weights_format': 'random'}},
                   'retention_opt': {'type': 'FeatureRetentionLoss', 'vgg': {'weights_path': 'x.pth'}}})
    # without vgg_opt the losses' own (agreeing) options are used, still one instance
    built.clear()
    SCLLosses({'contrastive_opt': {'type': 'SCLContrastiveLoss', 'vgg': {'weights_format': 'random'}},
               'retention_opt': {'type': 'FeatureRetentionLoss', 'vgg': {'weights_format': 'random'}}})
    assert len(built) == 1


def test_one_grad_pass_one_no_grad_pass_and_same_values_as_standalone():
    losses = SCLLosses(yaml.safe_load(VGG_LOSSES_YAML))
    calls = []
    losses.vgg.features[0].register_forward_hook(
        lambda m, inp, out: calls.append((torch.is_grad_enabled(), inp[0].size(0))))
    data = inputs()
    pred = torch.rand(2, 3, 16, 16, requires_grad=True)
    total, log = losses(pred, **data)
    # pred once with autograd; lq + positive + 2 negatives (2 each) concatenated in one no-grad pass
    assert calls == [(True, 2), (False, 8)]
    assert list(log) == ['l_con', 'l_fr', 'l_cc']
    assert not any(v.requires_grad for v in log.values())
    grad, = torch.autograd.grad(total, pred)

    # the same losses evaluated standalone (each its own passes) with the same extractor weights
    con = SCLContrastiveLoss()
    con.attach_extractor(losses.vgg)
    ret = FeatureRetentionLoss(loss_weight=2.0)
    ret.attach_extractor(losses.vgg)
    values = [con(pred, data['pos'], negative=data['neg']), ret(pred, data['lq']),
              losses.losses['color'](pred, curves=data['curves'])]
    for key, value in zip(log, values):
        torch.testing.assert_close(log[key], value.detach(), rtol=1e-5, atol=1e-7)
    ref_grad, = torch.autograd.grad(sum(values), pred)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)
    assert all(p.grad is None and not p.requires_grad for p in losses.vgg.parameters())


def test_single_negative_tensor_and_parent_train_keeps_frozen_nets_eval():
    losses = SCLLosses(yaml.safe_load(VGG_LOSSES_YAML))
    nn.Sequential(losses).train()
    assert not losses.vgg.training
    data = inputs(size=8)
    data['neg'] = data['neg'][0]
    total, _ = losses(torch.rand(2, 3, 8, 8), **data)
    assert torch.isfinite(total)


def test_shared_segmentor_from_segmentor_opt():
    opt = {
        'semantic_opt': {'type': 'SemanticBrightnessLoss', 'ce_weight': 1.0},
        'color_opt': {'type': 'ColorConstancyLoss', 'smooth_weight': 0},
        'segmentor_opt': TINY_SEG,
    }
    losses = SCLLosses(opt)
    assert isinstance(losses.segmentor, FrozenDeepLabV3Plus) and losses.vgg is None
    assert losses.losses['semantic']._segmentor is losses.segmentor
    assert losses.required_inputs == {'label'}
    pred = torch.rand(2, 3, 32, 32, requires_grad=True)
    data = inputs(size=32)
    total, log = losses(pred, label=data['label'])
    assert list(log) == ['l_sc', 'l_cc']
    total.backward()
    assert pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in losses.segmentor.parameters())
    with pytest.raises(ValueError, match=r"l_sc .* \['label'\]"):
        losses(pred)


def test_each_input_is_checked_once_per_step(monkeypatch):
    import sclle_basicsr.losses.contrastive_loss as contrastive
    import sclle_basicsr.losses.feature_retention_loss as retention
    import sclle_basicsr.losses.scl_losses as scl
    from sclle_basicsr.losses.vgg_features import check_image
    checked = []

    def counting_check(name, *args, **kwargs):
        checked.append(name)
        return check_image(name, *args, **kwargs)

    for module in (contrastive, retention, scl):
        monkeypatch.setattr(module, 'check_image', counting_check)
    losses = SCLLosses(yaml.safe_load(VGG_LOSSES_YAML))
    losses(torch.rand(2, 3, 8, 8), **inputs(size=8))
    assert sorted(checked) == ['negative[0]', 'negative[1]', 'positive', 'pred', 'reference']


def test_label_free_brightness_terms_need_no_input_and_add_their_standalone_values():
    from basicsr.losses import build_loss
    opts = {'semantic_opt': {'type': 'SemanticBrightnessLoss', 'ce_weight': 0, 'whole_image': True},
            'exposure_opt': {'type': 'ExposureControlLoss', 'patch_size': 4}}
    losses = SCLLosses(opts)
    assert losses.required_inputs == set() and losses.segmentor is None
    pred = torch.rand(2, 3, 16, 16)
    total, log = losses(pred)
    assert list(log) == ['l_sc', 'l_exp']
    standalone = [float(build_loss(opt)(pred)) for opt in opts.values()]
    assert [float(v) for v in log.values()] == pytest.approx(standalone)
    assert float(total) == pytest.approx(sum(standalone))
