from pathlib import Path

import pytest
import torch
import yaml
from basicsr.archs import build_network
from torch import nn

import sclle_basicsr  # noqa: F401  (compat fixes, registration)
from sclle_basicsr.archs.vgg_arch import CAFFE_BGR_MEAN, FrozenVGG16Features
from sclle_basicsr.inference import CheckpointError

REPO = Path(__file__).resolve().parents[1]
from sclle_basicsr.utils.assets import assets_root  # noqa: E402

ASSETS = Path(assets_root())
CAFFE_VGG = ASSETS / 'weights' / 'vgg16_imagenet_caffe_bgr_features.pth'
RELUS = ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3')


def random_features_state(seed=0):
    """A VGG-16 ``features`` state dict with fan-in scaled random weights (activations neither vanish nor blow up)."""
    torch.manual_seed(seed)
    net = FrozenVGG16Features(layers=('relu4_3', ), weights_format='random')
    for module in net.features:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode='fan_in', nonlinearity='relu')
            nn.init.uniform_(module.bias, -0.1, 0.1)
    return {f'features.{k}': v.clone() for k, v in net.features.state_dict().items()}


def caffe_to_torchvision(state, mean, std):
    """Caffe BGR 0-255 weights -> weights for RGB input normalised as (x - mean) / std on [0, 1].

    The first conv's input channels are flipped (BGR -> RGB) and scaled by 255 * std; mean = Caffe mean / 255 (RGB)
    makes (x - mean) / std * 255 * std = 255 x - Caffe mean exactly, zero padding included.
    """
    out = dict(state)
    w = state['features.0.weight'].flip(1)
    out['features.0.weight'] = w * (255 * torch.tensor(std)).view(1, 3, 1, 1)
    out['classifier.0.weight'] = torch.zeros(2, 2)  # a full torchvision vgg16 dict also carries the classifier
    return out


def test_built_by_name_from_yaml():
    opt = yaml.safe_load("""
        type: FrozenVGG16Features
        layers: [relu1_2, relu2_2]
        weights_format: random
    """)
    net = build_network(opt)
    assert isinstance(net, FrozenVGG16Features)
    assert len(net.features) == 9  # stops at relu2_2 (features.8)
    assert net.feature_scale == 1.0


def test_returns_requested_layers_and_stops_at_deepest():
    torch.manual_seed(0)
    net = FrozenVGG16Features(weights_format='random')
    assert len(net.features) == 23  # up to relu4_3
    calls = []
    for i, module in enumerate(net.features):
        module.register_forward_hook(lambda m, inp, out, i=i: calls.append(i))
    x = torch.rand(1, 3, 16, 16)
    out = net(x)
    assert list(out) == list(RELUS) and out['relu4_3'].shape == (1, 512, 2, 2)
    calls.clear()
    out = net(x, layers=['relu2_2', 'relu1_2'])
    assert set(out) == {'relu1_2', 'relu2_2'} and max(calls) == 8
    with pytest.raises(ValueError, match='relu5_3'):
        net(x, layers=['relu5_3'])
    with pytest.raises(ValueError, match='unknown'):
        FrozenVGG16Features(layers=['relu9_9'], weights_format='random')


def test_extract_many_matches_single_passes():
    torch.manual_seed(0)
    net = FrozenVGG16Features(layers=RELUS, weights_format='random')
    a, b, c = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8), torch.rand(1, 3, 16, 16)
    first_conv_batches = []
    net.features[0].register_forward_hook(lambda m, inp, out: first_conv_batches.append(inp[0].size(0)))
    many = net.extract_many([(a, ['relu1_2']), (b, ['relu4_3', 'relu2_2']), (c, None)])
    assert sorted(first_conv_batches) == [1, 4]  # a and b in one batch, c (other size) alone
    for x, layers, got in ((a, ['relu1_2'], many[0]), (b, ['relu4_3', 'relu2_2'], many[1]), (c, RELUS, many[2])):
        assert set(got) == set(layers)
        for name, feat in net(x, layers).items():
            torch.testing.assert_close(got[name], feat, rtol=1e-5, atol=1e-6)


def test_frozen_eval_and_input_gradient():
    parent = nn.Sequential(FrozenVGG16Features(layers=['relu2_2'], weights_format='random'))
    parent.train()
    net = parent[0]
    assert not net.training and not any(m.training for m in net.modules())
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(1, 3, 8, 8, requires_grad=True)
    net(x)['relu2_2'].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_missing_and_bad_weights(tmp_path):
    missing = tmp_path / 'nope.pth'
    with pytest.raises(FileNotFoundError, match='weights_path') as err:
        FrozenVGG16Features(weights_path=str(missing), weights_format='caffe_bgr')
    assert str(missing) in str(err.value)
    with pytest.raises(ValueError, match='weights_path'):
        FrozenVGG16Features(weights_format='caffe_bgr')  # no silent random fallback
    with pytest.raises(ValueError, match='weights_format'):
        FrozenVGG16Features(weights_format='imagenet')
    state = random_features_state()
    partial = {k: v for k, v in state.items() if not k.startswith('features.2.')}
    torch.save(partial, tmp_path / 'partial.pth')
    with pytest.raises(KeyError, match='features.2.weight'):
        FrozenVGG16Features(weights_path=str(tmp_path / 'partial.pth'))
    # weights of layers deeper than the ones built are not needed
    FrozenVGG16Features(layers=['relu1_1'], weights_path=str(tmp_path / 'partial.pth'))
    wrong = dict(state, **{'features.0.weight': torch.zeros(64, 4, 3, 3)})
    torch.save(wrong, tmp_path / 'wrong.pth')
    with pytest.raises(ValueError, match='shape'):
        FrozenVGG16Features(weights_path=str(tmp_path / 'wrong.pth'))


def test_weights_read_by_the_package_checkpoint_reader(tmp_path):
    state = random_features_state()
    bare = {k[len('features.'):]: v for k, v in state.items()}
    full = dict(state, **{'classifier.0.weight': torch.zeros(2, 2)})  # a full torchvision vgg16 dict
    wrapped = {'state_dict': {f'module.{k}': v for k, v in full.items()}}  # a DataParallel training checkpoint
    x = torch.rand(1, 3, 16, 16)
    outputs = []
    for name, obj in (('features.pth', state), ('bare.pth', bare), ('wrapped.pth', wrapped)):
        torch.save(obj, tmp_path / name)
        net = FrozenVGG16Features(layers=('relu2_2', ), weights_path=str(tmp_path / name), weights_format='torchvision')
        outputs.append(net(x)['relu2_2'])
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    with pytest.raises(CheckpointError, match=r'VGG-16 weights \(option weights_path\) .*notes\.pth: cannot be read '
                                              'as a PyTorch checkpoint') as err:
        FrozenVGG16Features(weights_path=str(tmp_path / 'notes.pth'), weights_format='torchvision')
    assert '\n' not in str(err.value)


def _check_caffe_equals_rgb(caffe_path, tmp_path, size=16, seed=0):
    state = torch.load(caffe_path, weights_only=True)
    mean = [m / 255 for m in reversed(CAFFE_BGR_MEAN)]  # RGB order on [0, 1]
    std = [0.5, 0.25, 2.0]  # any std: it is folded into the first conv
    torch.save(caffe_to_torchvision(state, mean, std), tmp_path / 'rgb.pth')
    caffe = FrozenVGG16Features(layers=RELUS, weights_path=str(caffe_path), weights_format='caffe_bgr')
    rgb = FrozenVGG16Features(layers=RELUS, weights_path=str(tmp_path / 'rgb.pth'), weights_format='torchvision',
                              mean=mean, std=std, feature_scale=1 / 255)
    assert caffe.feature_scale == pytest.approx(1 / 255)
    torch.manual_seed(seed)
    x = torch.rand(2, 3, size, size)
    a, b = caffe(x), rgb(x)
    for name in RELUS:
        scale = a[name].abs().max()
        assert scale > 0
        torch.testing.assert_close(a[name] / scale, b[name] / scale, rtol=0, atol=1e-4)
    return a


def test_caffe_bgr_equals_converted_rgb_weights_random(tmp_path):
    torch.save(random_features_state(), tmp_path / 'caffe.pth')
    _check_caffe_equals_rgb(tmp_path / 'caffe.pth', tmp_path)


@pytest.mark.skipif(not CAFFE_VGG.is_file(), reason=f'Caffe VGG-16 weights not found at {CAFFE_VGG} (SCLLE_ASSETS)')
def test_caffe_bgr_equals_converted_rgb_weights_real(tmp_path):
    feats = _check_caffe_equals_rgb(CAFFE_VGG, tmp_path)
    # with the 1/255 default the features are on the [0, 1] scale the paper's Gram margin was tuned for
    assert 0.1 < float(feats['relu1_2'].abs().max()) < 100


def test_double_precision_follows_module():
    net = FrozenVGG16Features(layers=['relu1_2'], weights_format='random').double()
    out = net(torch.rand(1, 3, 8, 8, dtype=torch.float64))
    assert out['relu1_2'].dtype == torch.float64
