import copy
import logging
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from conftest import TINY_SEGMENTOR_CFG
from torch import nn

import sclle_basicsr  # noqa: F401  (compat fixes, registration)
from sclle_basicsr.archs.segmentor_arch import FrozenDeepLabV3Plus, default_config_path, fold_batch_norms

TINY = {**TINY_SEGMENTOR_CFG, 'model.decode_head.num_classes': 5}


def tiny(**kwargs):
    return FrozenDeepLabV3Plus(cfg_options=TINY, **kwargs)


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
    """A tiny random segmentor and its checkpoint (mmseg layout, with an auxiliary head to be skipped)."""
    torch.manual_seed(0)
    net = tiny(allow_random_init=True, fold_batch_norm=False)  # the mmseg layout, BNs kept
    for module in net.modules():  # non-trivial BN statistics, so a wrong load would show
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    state = {k: v.clone() for k, v in net.model.state_dict().items()}
    path = tmp_path_factory.mktemp('seg') / 'tiny.pth'
    aux = {'auxiliary_head.conv_seg.weight': torch.zeros(5, 4, 1, 1)}
    torch.save({'meta': {'note': 'test'}, 'state_dict': dict(state, **aux)}, path)
    return net, state, path


def test_checkpoint_required_unless_random_allowed():
    with pytest.raises(ValueError, match='checkpoint.*allow_random_init'):
        FrozenDeepLabV3Plus()
    with pytest.raises(FileNotFoundError, match='option checkpoint'):
        tiny(checkpoint='/nonexistent/deeplab.pth')
    with pytest.raises(FileNotFoundError, match='option config'):
        FrozenDeepLabV3Plus(config='/nonexistent/config.py', allow_random_init=True)


def test_missing_mmcv_is_one_clear_error(monkeypatch):
    import importlib.util
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'mmcv' else find_spec(name, *a))
    with pytest.raises(ModuleNotFoundError, match=r"needs mmcv.*pip install 'sclle-basicsr\[mmcv-lite\]'; never both"):
        tiny(allow_random_init=True)


def test_default_config_is_cityscapes_r50_and_built_clean():
    path = default_config_path()
    assert osp.isfile(path) and 'deeplabv3plus_r50-d8' in path and 'cityscapes-512x1024' in path
    net = tiny(allow_random_init=True)
    assert net.num_classes == 5
    assert not hasattr(net.model, 'auxiliary_head') or net.model.auxiliary_head is None
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in net.modules())
    assert net.rgb_input  # the Cityscapes config converts BGR to RGB: the network eats RGB


def test_built_by_name_and_reloads_checkpoint(saved, tmp_path):
    net, state, path = saved
    x = torch.rand(2, 3, 64, 64)
    reloaded = build_network({'type': 'FrozenDeepLabV3Plus', 'cfg_options': TINY, 'checkpoint': str(path),
                              'fold_batch_norm': False})
    for key, value in reloaded.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    with torch.no_grad():
        out = reloaded(x)
        ref = net(x)
    assert out.shape == (2, 5, 64, 64)
    torch.testing.assert_close(out, ref)
    # normalisation: RGB [0, 1] -> (255 x - mean) / std of the config's data_preprocessor
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    metas = [dict(img_shape=(64, 64), pad_shape=(64, 64))] * 2
    with torch.no_grad():
        manual = reloaded.model.encode_decode((x * 255 - mean) / std, metas)
    torch.testing.assert_close(out, manual)


def test_frozen_eval_gradient_reaches_input(saved):
    net = saved[0]
    parent = nn.Sequential(net)
    parent.train()
    assert not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    net(x).logsumexp(1).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


class _Capture(logging.Handler):

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_key_mismatch_is_an_error_unless_allowed(saved, tmp_path):
    _, state, _ = saved
    broken = {k: v for k, v in state.items() if not k.startswith('decode_head.conv_seg.')}
    broken['decode_head.extra.weight'] = torch.zeros(1)
    path = tmp_path / 'broken.pth'
    torch.save(broken, path)
    with pytest.raises(RuntimeError, match='decode_head.conv_seg.weight') as err:
        tiny(checkpoint=str(path))
    assert 'decode_head.extra.weight' in str(err.value) and 'allow_key_mismatch' in str(err.value)
    capture = _Capture()
    logging.getLogger('basicsr').addHandler(capture)
    try:
        tiny(checkpoint=str(path), allow_key_mismatch=True)
    finally:
        logging.getLogger('basicsr').removeHandler(capture)
    assert any('missing keys' in m and 'conv_seg' in m for m in capture.messages)
    assert any('unexpected keys' in m and 'decode_head.extra.weight' in m for m in capture.messages)
    assert torch.equal(tiny(checkpoint=str(path), allow_key_mismatch=True, fold_batch_norm=False).model.state_dict()
                       ['backbone.stem.0.weight'], state['backbone.stem.0.weight'])
    # a checkpoint for another number of classes: shape mismatch
    with pytest.raises(RuntimeError, match='shape mismatch'):
        FrozenDeepLabV3Plus(cfg_options=TINY, num_classes=3, checkpoint=str(saved[2]))


def test_batch_norms_folded_by_default_same_output_and_input_gradient(saved):
    """Folding is exact algebra: in float64 the logits and the gradient reaching the input agree to rounding."""
    _, _, path = saved
    plain = tiny(checkpoint=str(path), fold_batch_norm=False).double()
    folded = copy.deepcopy(plain)
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert fold_batch_norms(folded, torch.rand(1, 3, 32, 32, dtype=torch.float64)) == n_bn > 0
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.rand(2, 3, 48, 40, dtype=torch.float64)
    label = torch.randint(0, 5, (2, 48, 40))
    grads = []
    for net in (plain, folded):
        xi = x.clone().requires_grad_(True)
        logits = net(xi)
        F.cross_entropy(logits, label).backward()
        grads.append((logits.detach(), xi.grad))
    torch.testing.assert_close(grads[1][0], grads[0][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grads[1][1], grads[0][1], rtol=1e-8, atol=1e-14)
    # the default build folds and keeps the function (float32)
    default = tiny(checkpoint=str(path))
    assert default.folded_batch_norms == n_bn and 'folded_batch_norms' in repr(default)
    with torch.no_grad():
        torch.testing.assert_close(default(x.float()), plain.float()(x.float()), rtol=1e-4, atol=1e-5)
    assert not any(p.requires_grad for p in default.parameters())


def test_full_size_default_config_folds_every_batch_norm():
    net = FrozenDeepLabV3Plus(allow_random_init=True)
    assert net.folded_batch_norms == 69
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def test_folding_refuses_a_conv_whose_output_is_also_used_elsewhere():
    class Branching(nn.Module):

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4).eval()
            self.bn.running_mean.fill_(0.5)

        def forward(self, x):
            y = self.conv(x)
            return self.bn(y) + y  # y used twice: folding the BN into the conv would change the second use

    with pytest.raises(RuntimeError, match='fold_batch_norm: false'):
        fold_batch_norms(Branching(), torch.rand(1, 3, 8, 8))
