"""The shared inference path: checkpoint loading, fused forward, tiling, precision, denormals, Enhancer."""
import warnings

import numpy as np
import pytest
import torch

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.inference import (CheckpointError, Enhancer, _denormals_flushed, enhance_tensor, flush_denormals,
                                     load_enhancer, read_dcenet_state_dict)


def psnr(a, b):
    return float(10 * torch.log10(1 / ((a.float() - b.float())**2).mean().clamp_min(1e-20)))


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    model = DCENet()
    with torch.no_grad():  # larger curves than the default init so the curve steps matter
        model.e_conv7.weight.mul_(4)
    return model.eval()


@pytest.fixture(scope='module')
def image():
    torch.manual_seed(1)
    return torch.rand(1, 3, 45, 70) * 0.5


def reference(net, x):
    with torch.no_grad():
        return net(x)


def test_fused_matches_dcenet_forward(net, image):
    for channels_last in (True, False):
        out = enhance_tensor(net, image, channels_last=channels_last)
        assert out.shape == image.shape and out.dtype == image.dtype and out.is_contiguous()
        assert (out - reference(net, image)).abs().max() <= 1e-5


def test_batch(net):
    x = torch.rand(2, 3, 20, 24)
    assert (enhance_tensor(net, x) - reference(net, x)).abs().max() <= 1e-5


@pytest.mark.parametrize('tile,tile_pad', [(16, 7), (32, 8), (17, 10), (64, 7)])
def test_tiling_equals_untiled(net, image, tile, tile_pad):
    whole = enhance_tensor(net, image)
    tiled = enhance_tensor(net, image, tile=tile, tile_pad=tile_pad)
    assert (tiled - whole).abs().max() <= 1e-6


def test_too_small_tile_pad_differs(net, image):
    # the receptive radius is 7: a pad of 2 must show seams (checks the test above is meaningful)
    whole = enhance_tensor(net, image)
    assert (enhance_tensor(net, image, tile=16, tile_pad=2) - whole).abs().max() > 1e-6


def test_bf16_close_to_fp32(net):
    x = torch.rand(1, 3, 24, 32)
    with warnings.catch_warnings():  # without native bf16 it warns (once) that bf16 is emulated
        warnings.simplefilter('ignore', RuntimeWarning)
        out = enhance_tensor(net, x, precision='bf16')
    assert out.dtype == torch.float32
    assert psnr(out, enhance_tensor(net, x)) >= 50


def test_fp16_on_cpu_is_a_clear_error(net, image):
    with pytest.raises(ValueError, match='fp16.*CUDA'):
        enhance_tensor(net, image, precision='fp16')
    with pytest.raises(ValueError, match='precision must be one of'):
        enhance_tensor(net, image, precision='int8')


def test_bad_input_shape(net):
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\)'):
        enhance_tensor(net, torch.rand(1, 4, 8, 8))


def test_flush_denormals_restores_previous_state():
    before = _denormals_flushed()
    with flush_denormals():
        if torch.set_flush_denormal(True):
            assert _denormals_flushed()
    assert _denormals_flushed() == before
    torch.set_flush_denormal(True)
    try:
        with flush_denormals():
            pass
        assert _denormals_flushed()
    finally:
        torch.set_flush_denormal(before)


def test_weights_changed_after_first_call_are_used(image):
    model = DCENet().eval()
    first = enhance_tensor(model, image)
    with torch.no_grad():
        model.e_conv7.bias.add_(0.5)
    second = enhance_tensor(model, image)
    assert (second - reference(model, image)).abs().max() <= 1e-5
    assert (second - first).abs().max() > 1e-3


# ---- checkpoints


@pytest.mark.parametrize('wrap', ['bare', 'params', 'params_ema', 'module'])
def test_checkpoint_formats(tmp_path, net, image, wrap):
    sd = net.state_dict()
    if wrap == 'params':
        obj = {'params': sd}
    elif wrap == 'params_ema':  # params_ema preferred over params
        obj = {'params': DCENet().state_dict(), 'params_ema': sd}
    elif wrap == 'module':
        obj = {'params': {f'module.{k}': v for k, v in sd.items()}}
    else:
        obj = sd
    path = tmp_path / 'net.pth'
    torch.save(obj, path)
    loaded = load_enhancer(str(path))
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert (enhance_tensor(loaded, image) - reference(net, image)).abs().max() <= 1e-5


def test_checkpoint_infers_width_and_iterations(tmp_path):
    small = DCENet(num_iterations=4, num_features=8)
    torch.save(small.state_dict(), tmp_path / 's.pth')
    _, _, n_iter, nf = read_dcenet_state_dict(str(tmp_path / 's.pth'))
    assert (n_iter, nf) == (4, 8)
    x = torch.rand(1, 3, 12, 12)
    assert (enhance_tensor(load_enhancer(str(tmp_path / 's.pth')), x) - reference(small, x)).abs().max() <= 1e-5


def test_checkpoint_errors_name_the_file(tmp_path):
    missing = tmp_path / 'nope.pth'
    with pytest.raises(CheckpointError, match='nope.pth.*not found'):
        load_enhancer(str(missing))
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(CheckpointError, match='junk.pth.*cannot be read'):
        load_enhancer(str(junk))
    other = tmp_path / 'other.pth'
    torch.save({'params': {'conv.weight': torch.zeros(1)}}, other)
    with pytest.raises(CheckpointError, match=r'other.pth \["params"\].*not a DCENet'):
        load_enhancer(str(other))
    sd = DCENet().state_dict()
    sd.pop('e_conv3.bias')
    sd['extra.weight'] = torch.zeros(1)
    sd['e_conv2.weight'] = torch.zeros(32, 16, 3, 3)
    bad = tmp_path / 'bad.pth'
    torch.save(sd, bad)
    with pytest.raises(CheckpointError) as info:
        load_enhancer(str(bad))
    msg = str(info.value)
    assert 'bad.pth' in msg and 'missing keys: e_conv3.bias' in msg and 'unexpected keys: extra.weight' in msg
    assert 'e_conv2.weight: (32, 16, 3, 3) in file, (32, 32, 3, 3) expected' in msg


# ---- Enhancer (array API)


def test_enhancer_arrays(net):
    enh = Enhancer(net=net, device='cpu')
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 120, (20, 30, 3), dtype=np.uint8)
    out8 = enh.enhance(rgb8)
    assert out8.dtype == np.uint8 and out8.shape == rgb8.shape
    expected = reference(net, torch.from_numpy(rgb8).permute(2, 0, 1)[None].float() / 255)[0].permute(1, 2, 0)
    assert np.abs(out8.astype(int) - np.rint(expected.clamp(0, 1).numpy() * 255)).max() <= 1

    rgb16 = rgb8.astype(np.uint16) * 257
    out16 = enh.enhance(rgb16)
    assert out16.dtype == np.uint16 and np.abs(out16.astype(int) // 257 - out8.astype(int)).max() <= 1

    gray = rgb8[:, :, 0]
    outg = enh.enhance(gray)
    assert outg.shape == gray.shape and outg.dtype == np.uint8
    assert enh.enhance(gray[:, :, None]).shape == (20, 30, 1)

    rgba = np.dstack([rgb8, rng.integers(0, 256, (20, 30), dtype=np.uint8)])
    outa = enh.enhance(rgba)
    assert outa.shape == rgba.shape and np.array_equal(outa[:, :, 3], rgba[:, :, 3])
    assert np.array_equal(outa[:, :, :3], out8)

    f32 = rgb8.astype(np.float32) / 255
    assert enh.enhance(f32).dtype == np.float32

    t = torch.rand(2, 3, 10, 12)
    assert (enh.enhance(t) - reference(net, t)).abs().max() <= 1e-5
    assert enh.enhance(t[0]).shape == (3, 10, 12)
    with pytest.raises(ValueError):
        enh.enhance(np.zeros((4, 4, 5), np.uint8))


def test_released_weights_tiled_and_fused(tmp_path):
    from conftest import require_asset
    path = require_asset('weights', 'sclle_official.pth')
    model = load_enhancer(path)
    x = torch.rand(1, 3, 40, 60) * 0.3
    out = enhance_tensor(model, x)
    assert (out - reference(model, x)).abs().max() <= 1e-5
    assert (enhance_tensor(model, x, tile=24, tile_pad=7) - out).abs().max() <= 1e-6
    assert out.mean() > x.mean()


def test_released_weights_match_the_published_network():
    """The fast path with the released SCL-LLE weights equals the network written out by hand (float, 1e-5)."""
    from conftest import require_asset
    from test_dcenet_arch import reference_forward
    path = require_asset('weights', 'sclle_official.pth')
    state = torch.load(path, map_location='cpu')
    x = torch.rand(2, 3, 61, 83, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = reference_forward(state, x)[0]
    for kwargs in ({}, {'tile': 32, 'tile_pad': 7}):
        assert (enhance_tensor(load_enhancer(path), x, **kwargs) - expected).abs().max() <= 1e-5
