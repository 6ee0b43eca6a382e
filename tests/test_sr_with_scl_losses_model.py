import pytest
import torch
import yaml
from basicsr.models import build_model

import sclle_basicsr  # noqa: F401  (compat fixes, registration)
from sclle_basicsr.models.sr_with_scl_losses_model import SRWithSCLLossesModel

OPT_YAML = """
name: sr_with_scl_losses_test
model_type: SRWithSCLLossesModel
num_gpu: 0
is_train: true
dist: false
scale: 2
network_g: {type: MSRResNet, num_in_ch: 3, num_out_ch: 3, num_feat: 8, num_block: 1, upscale: 2}
path: {pretrain_network_g: ~}
train:
  ema_decay: 0
  optim_g: {type: Adam, lr: 1.0e-3}
  scheduler: {type: MultiStepLR, milestones: [100], gamma: 0.5}
  pixel_opt: {type: L1Loss, loss_weight: 1.0}
  retention_opt: {type: FeatureRetentionLoss, layer: relu2_2, loss_weight: 1.0}
  color_opt: {type: ColorConstancyLoss, smooth_weight: 0}
  contrastive_opt: {type: SCLContrastiveLoss}
  vgg_opt: {weights_format: random}
"""


def test_srmodel_with_scl_losses_trains_one_step():
    opt = yaml.safe_load(OPT_YAML)
    torch.manual_seed(0)
    model = build_model(opt)
    assert isinstance(model, SRWithSCLLossesModel)
    assert model.scl_losses.required_inputs == {'lq', 'pos', 'neg'}
    before = [p.detach().clone() for p in model.net_g.parameters()]
    model.feed_data({
        'lq': torch.rand(2, 3, 8, 8),
        'gt': torch.rand(2, 3, 16, 16),
        'pos': torch.rand(2, 3, 16, 16),
        'neg': [torch.rand(2, 3, 16, 16) * 0.1, torch.rand(2, 3, 16, 16) * 0.1 + 0.9],
    })
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_pix', 'l_con', 'l_fr', 'l_cc'}
    assert all(isinstance(v, float) for v in model.log_dict.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.net_g.parameters()))
    assert all(p.grad is None for p in model.scl_losses.vgg.parameters())
    assert not model.scl_losses.vgg.training


def test_curve_losses_are_refused_for_generic_networks():
    opt = yaml.safe_load(OPT_YAML)
    for key in ('retention_opt', 'contrastive_opt', 'vgg_opt'):
        del opt['train'][key]
    opt['train']['color_opt'] = {'type': 'ColorConstancyLoss'}  # the smoothness term needs curve maps
    with pytest.raises(ValueError, match='smooth_weight: 0'):
        build_model(opt)


def test_scl_losses_alone_train_without_pixel_or_perceptual_loss():
    opt = yaml.safe_load(OPT_YAML)
    del opt['train']['pixel_opt']
    torch.manual_seed(0)
    model = build_model(opt)
    assert model.cri_pix is None and model.cri_perceptual is None
    before = [p.detach().clone() for p in model.net_g.parameters()]
    model.feed_data({'lq': torch.rand(2, 3, 8, 8), 'pos': torch.rand(2, 3, 16, 16),
                     'neg': [torch.rand(2, 3, 16, 16) * 0.1]})  # no gt: an unpaired batch
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_con', 'l_fr', 'l_cc'}
    assert any(not torch.equal(b, p) for b, p in zip(before, model.net_g.parameters()))
    assert model.schedulers and model.optimizer_g is model.optimizers[0]


def test_missing_batch_inputs_name_the_dataset_option():
    model = build_model(yaml.safe_load(OPT_YAML))
    pos, neg = torch.rand(2, 3, 16, 16), [torch.rand(2, 3, 16, 16)]
    model.feed_data({'lq': torch.rand(2, 3, 8, 8), 'pos': pos, 'neg': neg})  # pixel_opt but no gt
    with pytest.raises(ValueError, match=r'pixel_opt / perceptual_opt compare with gt.*dataroot_gt'):
        model.optimize_parameters(1)
    model.feed_data({'lq': torch.rand(2, 3, 8, 8), 'gt': torch.rand(2, 3, 16, 16), 'neg': neg})
    with pytest.raises(ValueError, match=r"need \['pos'\].*\['dataroot_pos'\]"):
        model.optimize_parameters(1)


def test_return_pair_is_refused_for_an_scl_loss():
    opt = yaml.safe_load(OPT_YAML)
    opt['train']['retention_opt']['return_pair'] = True
    with pytest.raises(ValueError, match='retention_opt has return_pair'):
        build_model(opt)
