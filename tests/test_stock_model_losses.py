"""Each registered SCL-LLE loss as pixel_opt / perceptual_opt of BasicSR's stock SRModel, which calls
loss(output, gt): it either does what its docstring says with gt, or refuses naming the options and the way out."""
import pytest
import torch
import yaml
from basicsr.models import build_model
from basicsr.models.sr_model import SRModel

import sclle_basicsr  # noqa: F401  (compat fixes, registration)
from sclle_basicsr.losses.contrastive_loss import SCLContrastiveLoss
from sclle_basicsr.losses.feature_retention_loss import FeatureRetentionLoss

OPT_YAML = """
name: stock_srmodel_scl_loss
model_type: SRModel
num_gpu: 0
is_train: true
dist: false
scale: 1
network_g: {type: EDSR, num_in_ch: 3, num_out_ch: 3, num_feat: 8, num_block: 1, upscale: 1, img_range: 1.0}
path: {pretrain_network_g: ~}
train:
  ema_decay: 0
  optim_g: {type: Adam, lr: 1.0e-3}
  scheduler: {type: MultiStepLR, milestones: [100], gamma: 0.5}
"""
RANDOM_VGG = {'weights_format': 'random'}


def stock_model(**losses):
    opt = yaml.safe_load(OPT_YAML)
    opt['train'].update(losses)
    torch.manual_seed(0)
    model = build_model(opt)
    assert type(model) is SRModel
    return model


def batch(seed=0):
    torch.manual_seed(seed)
    return {'lq': torch.rand(2, 3, 16, 16) * 0.3, 'gt': torch.rand(2, 3, 16, 16)}


def one_step(model, data):
    before = [p.detach().clone() for p in model.net_g.parameters()]
    model.feed_data(data)
    model.optimize_parameters(1)
    assert any(not torch.equal(b, p) for b, p in zip(before, model.net_g.parameters()))
    return model.log_dict


@pytest.mark.parametrize('opt', [
    {'type': 'FeatureRetentionLoss', 'layer': 'relu2_2', 'vgg': RANDOM_VGG},
    {'type': 'SCLContrastiveLoss', 'use_negatives': False, 'vgg': RANDOM_VGG},
])
def test_vgg_losses_compare_the_output_with_gt_as_pixel_opt(opt):
    model = stock_model(pixel_opt=opt)
    data = batch()
    with torch.no_grad():
        output = model.net_g(data['lq'])
        expected = float(model.cri_pix(output, data['gt']))
        assert float(model.cri_pix(output, output)) < expected  # gt is the reference: identical images score less
    logs = one_step(model, data)
    assert logs['l_pix'] == pytest.approx(expected, rel=1e-5)


def test_retention_loss_as_perceptual_opt_with_return_pair():
    model = stock_model(perceptual_opt={'type': 'FeatureRetentionLoss', 'layer': 'relu2_2', 'vgg': RANDOM_VGG,
                                        'return_pair': True})
    data = batch()
    with torch.no_grad():
        percep, style = model.cri_perceptual(model.net_g(data['lq']), data['gt'])
    assert style is None
    logs = one_step(model, data)
    assert set(logs) == {'l_percep'} and logs['l_percep'] == pytest.approx(float(percep), rel=1e-5)


def test_colour_term_alone_needs_no_gt_and_does_not_read_it():
    model = stock_model(pixel_opt={'type': 'ColorConstancyLoss', 'smooth_weight': 0})
    data = batch()
    with torch.no_grad():
        output = model.net_g(data['lq'])
        values = {float(model.cri_pix(output, gt)) for gt in (data['gt'], torch.zeros_like(data['gt']))}
        colour_only = float(model.cri_pix(output))
    assert values == {colour_only} and colour_only > 0
    assert one_step(model, data)['l_pix'] == pytest.approx(colour_only, rel=1e-5)


@pytest.mark.parametrize('opt, remedy', [
    ({'type': 'ColorConstancyLoss'}, 'smooth_weight: 0'),
    ({'type': 'SCLContrastiveLoss', 'vgg': RANDOM_VGG}, 'use_negatives: false'),
    ({'type': 'SemanticBrightnessLoss', 'ce_weight': 0}, 'train.semantic_opt of SRWithSCLLossesModel'),
])
@pytest.mark.parametrize('slot', ['pixel_opt', 'perceptual_opt'])
def test_losses_that_need_more_than_gt_refuse_and_say_what_to_do(opt, remedy, slot):
    model = stock_model(**{slot: dict(opt, return_pair=slot == 'perceptual_opt')})
    before = [p.detach().clone() for p in model.net_g.parameters()]
    model.feed_data(batch())
    with pytest.raises(ValueError, match=r'loss\(output, gt\).*pixel_opt / perceptual_opt') as err:
        model.optimize_parameters(1)
    assert remedy in str(err.value)
    assert all(torch.equal(b, p) for b, p in zip(before, model.net_g.parameters()))


def test_extra_inputs_are_keyword_only():
    pred, ref = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8)
    with pytest.raises(TypeError):
        SCLContrastiveLoss(vgg=RANDOM_VGG)(pred, ref, ref)  # negatives by keyword only
    with pytest.raises(TypeError):
        FeatureRetentionLoss(vgg=RANDOM_VGG)(pred, ref, ref)
