"""The shared inference path: checkpoints, backends (torch, ONNX Runtime, OpenVINO), tiling, precision, checks."""
import re
import sys
import warnings

import numpy as np
import pytest
import torch

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.inference import (
    BackendUnavailable,
    CheckpointError,
    Enhancer,
    InvalidImageError,
    InvalidWeightsError,
    NonFiniteOutputError,
    backends,
    enhance_tensor,
    flush_denormals,
    load_enhancer,
    read_dcenet_state_dict,
    select_backend,
    unwrap_state_dict,
)
from sclle_basicsr.inference.backends import _denormals_flushed, backend_for, openvino_native_bf16
from sclle_basicsr.inference.tiling import tile_ranges

CPU = torch.device('cpu')


def psnr(a, b):
    return float(10 * torch.log10(1 / ((a.float() - b.float())**2).mean().clamp_min(1e-20)))


def installed(name):
    """Whether backend ``name`` can run here: its runtime, ONNX Runtime's CPU provider and onnx for the exporter."""
    return backends.runtime_problem(name) is None


def native_bf16():
    return installed('openvino') and openvino_native_bf16()


# every (backend, precision) this machine can run; the others are skipped with the reason
RUNS = [
    pytest.param('torch', 'fp32', id='torch-fp32'),
    pytest.param('torch', 'bf16', id='torch-bf16'),
    pytest.param('onnxruntime', 'fp32', id='onnxruntime-fp32',
                 marks=pytest.mark.skipif(not installed('onnxruntime'), reason='onnxruntime or onnx not installed')),
    pytest.param('openvino', 'fp32', id='openvino-fp32',
                 marks=pytest.mark.skipif(not installed('openvino'), reason='openvino or onnx not installed')),
    pytest.param('openvino', 'bf16', id='openvino-bf16',
                 marks=pytest.mark.skipif(not native_bf16(), reason='openvino not installed or no native bf16')),
]


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


def check_close(out, expected, precision):
    if precision == 'fp32':
        assert (out - expected).abs().max() <= 1e-5
    else:
        assert psnr(out, expected) >= 60


@pytest.mark.parametrize('backend,precision', RUNS)
def test_backend_matches_torch_fp32_untiled_and_tiled(net, image, backend, precision):
    expected = reference(net, image)
    with warnings.catch_warnings():  # torch bf16 warns on CPUs without native bf16
        warnings.simplefilter('ignore', RuntimeWarning)
        whole = enhance_tensor(net, image, precision=precision, backend=backend)
        tiled = enhance_tensor(net, image, tile=16, tile_pad=7, precision=precision, backend=backend)
    assert whole.shape == image.shape and whole.dtype == image.dtype and whole.is_contiguous()
    check_close(whole, expected, precision)
    check_close(tiled, expected, precision)
    batch = torch.rand(2, 3, 20, 24)
    check_close(enhance_tensor(net, batch, precision=precision, backend=backend), reference(net, batch), precision)


@pytest.mark.parametrize('tile,tile_pad', [(16, 7), (32, 8), (17, 10), (64, 7)])
def test_tiling_equals_untiled(net, image, tile, tile_pad):
    whole = enhance_tensor(net, image, backend='torch')
    tiled = enhance_tensor(net, image, tile=tile, tile_pad=tile_pad, backend='torch')
    assert (tiled - whole).abs().max() <= 1e-6


@pytest.mark.parametrize('size,tile,pad', [(1728, 384, 8), (4000, 384, 8), (45, 16, 7), (101, 100, 8), (5, 64, 8)])
def test_tiles_cover_the_axis_once_in_windows_of_one_length(size, tile, pad):
    ranges = list(tile_ranges(size, tile, pad))
    covered = np.zeros(size, int)
    for start, end, padded_start, padded_end in ranges:
        covered[start:end] += 1
        assert end - start <= tile and 0 <= padded_start <= max(0, start - pad)
        assert min(size, end + pad) <= padded_end <= size
    assert (covered == 1).all()
    assert {padded_end - padded_start for *_, padded_start, padded_end in ranges} == {min(size, ranges[0][1] + 2 * pad)}


def test_too_small_tile_pad_differs(net, image):
    # the receptive radius is 7: a pad of 2 must show seams (checks the test above is meaningful)
    whole = enhance_tensor(net, image, backend='torch')
    assert (enhance_tensor(net, image, tile=16, tile_pad=2, backend='torch') - whole).abs().max() > 1e-6


def test_precision_and_backend_errors(net, image):
    with pytest.raises(ValueError, match='fp16.*CUDA'):
        enhance_tensor(net, image, precision='fp16')
    with pytest.raises(ValueError, match='precision must be one of'):
        enhance_tensor(net, image, precision='int8')
    with pytest.raises(ValueError, match='backend must be one of'):
        enhance_tensor(net, image, backend='tensorrt')
    with pytest.raises(ValueError, match='onnxruntime.*fp32 only'):
        select_backend('onnxruntime', CPU, 'bf16')
    with pytest.raises(ValueError, match='openvino.*CPU only'):
        select_backend('openvino', torch.device('cuda'), 'fp32')
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\)'):
        enhance_tensor(net, torch.rand(1, 4, 8, 8))


# ---- auto and missing runtimes


def hide(monkeypatch, *names):
    for name in names:  # a None entry makes ``import name`` raise ImportError, as when it is not installed
        monkeypatch.setitem(sys.modules, name, None)


def test_auto_rule(monkeypatch):
    assert select_backend('auto', torch.device('cuda'), 'fp32') == 'torch'
    assert select_backend('auto', torch.device('cuda'), 'fp16') == 'torch'
    if installed('onnxruntime'):
        assert select_backend('auto', CPU, 'fp32') == 'onnxruntime'
    if installed('openvino'):
        assert select_backend('auto', CPU, 'bf16') == ('openvino' if openvino_native_bf16() else 'torch')
    hide(monkeypatch, 'onnxruntime')
    if installed('openvino'):
        assert select_backend('auto', CPU, 'fp32') == 'openvino'
    hide(monkeypatch, 'openvino')
    assert select_backend('auto', CPU, 'bf16') == 'torch'
    assert select_backend('auto', CPU, 'fp32') == 'torch'


class FakeOnnxRuntime:
    """An ``onnxruntime`` module listing only the given providers (as a build without the CPU one would)."""
    __version__ = '0.0-test'

    def __init__(self, providers):
        self.providers = providers

    def get_available_providers(self):
        return self.providers


@pytest.fixture
def fresh_fallback_notes(monkeypatch):
    monkeypatch.setattr(backends, '_FALLBACKS_SAID', set())


@pytest.mark.parametrize('hidden, fake_ort, said', [
    # nothing installed: one line, naming both runtimes and the CPU extra
    (('onnxruntime', 'openvino'), None, r"onnxruntime is not installed; openvino is not installed\. For faster "
                                        r"inference: pip install 'sclle-basicsr\[cpu\]'"),
    # a runtime without onnx (a plain install beside onnxruntime): torch's exporter could not write its graph
    (('onnx', 'openvino'), ['CPUExecutionProvider'], r"onnxruntime needs the onnx package for torch's ONNX exporter, "
                                                     r"which is not installed; openvino is not installed\. For faster "
                                                     r"inference: pip install onnx$"),
    # an ONNX Runtime build without the CPU provider
    (('openvino', ), ['CUDAExecutionProvider'], r'onnxruntime 0\.0-test has no CPUExecutionProvider \(it lists '
                                                r'CUDAExecutionProvider\); openvino is not installed'),
])
def test_auto_takes_only_complete_chains_and_says_why_once(monkeypatch, caplog, fresh_fallback_notes, net, image,
                                                          hidden, fake_ort, said):
    hide(monkeypatch, *hidden)
    if fake_ort is not None:
        monkeypatch.setitem(sys.modules, 'onnxruntime', FakeOnnxRuntime(fake_ort))
    with caplog.at_level('WARNING', logger=backends.__name__):
        assert select_backend('auto', CPU, 'fp32') == 'torch'
        enhancer = Enhancer(net=net, device='cpu')  # runs (torch) where the runtime's chain is incomplete
        assert (enhancer.enhance_tensor(image) - reference(net, image)).abs().max() <= 1e-6
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines  # said once per process, however many enhancers
    assert lines[0].startswith('backend auto runs torch on the CPU (fp32): ')
    assert re.search(said, lines[0]), lines[0]


@pytest.mark.parametrize('flags, said', [({'avx512_bf16'}, True), ({'avx2'}, False)])
def test_auto_bf16_without_openvino_says_so_only_where_it_would_help(monkeypatch, caplog, fresh_fallback_notes,
                                                                     flags, said):
    hide(monkeypatch, 'openvino')
    monkeypatch.setattr(backends, 'cpu_flags', lambda: flags)
    with caplog.at_level('WARNING', logger=backends.__name__):
        assert select_backend('auto', CPU, 'bf16') == 'torch'
    expected = ["backend auto runs torch on the CPU (bf16): openvino is not installed. For faster inference: "
                "pip install 'sclle-basicsr[openvino]'"]
    assert [r.getMessage() for r in caplog.records] == (expected if said else [])


@pytest.mark.parametrize('name, hidden, why, install', [
    ('onnxruntime', 'onnxruntime', 'onnxruntime is not installed',
     r"pip install 'sclle-basicsr\[cpu\]' \(or \[gpu\] for onnxruntime-gpu; never both\)"),
    ('openvino', 'openvino', 'openvino is not installed', r"pip install 'sclle-basicsr\[openvino\]'"),
    ('onnxruntime', 'onnx', "onnxruntime needs the onnx package for torch's ONNX exporter, which is not installed",
     'pip install onnx'),
])
def test_missing_runtime_says_how_to_install_it(monkeypatch, net, name, hidden, why, install):
    hide(monkeypatch, hidden)
    if hidden == 'onnx':  # whether or not onnxruntime is installed here: one with its CPU provider
        monkeypatch.setitem(sys.modules, 'onnxruntime', FakeOnnxRuntime(['CPUExecutionProvider']))
    with pytest.raises(BackendUnavailable, match=f'^backend "{name}" cannot run here: {why}. Install: {install}$'):
        Enhancer(net=net, device='cpu', backend=name)


@pytest.mark.parametrize('flags, warns', [({'avx2'}, True), ({'avx512_bf16'}, False), ({'amx_bf16'}, False)])
def test_torch_bf16_on_cpu_warns_without_native_bf16(monkeypatch, net, flags, warns):
    monkeypatch.setattr(backends, 'cpu_flags', lambda: flags)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        backends.TorchBackend(net, CPU, 'bf16')
    assert [str(w.message).startswith('this CPU has no native bf16') for w in caught] == ([True] if warns else [])


@pytest.mark.skipif(not installed('onnxruntime'), reason='onnxruntime or onnx not installed')
def test_runtime_built_once_and_rebuilt_when_weights_change(image):
    model = DCENet().eval()
    first = backend_for(model, 'onnxruntime', CPU, 'fp32')
    before = enhance_tensor(model, image, backend='onnxruntime')
    enhance_tensor(model, torch.rand(2, 3, 33, 17), backend='onnxruntime', tile=16)  # other shapes, same session
    assert backend_for(model, 'onnxruntime', CPU, 'fp32') is first
    with torch.no_grad():
        model.e_conv7.bias.add_(0.5)
    after = enhance_tensor(model, image, backend='onnxruntime')
    assert backend_for(model, 'onnxruntime', CPU, 'fp32') is not first
    assert (after - reference(model, image)).abs().max() <= 1e-5 and (after - before).abs().max() > 1e-3


@pytest.mark.parametrize('precision', [
    'fp32', pytest.param('bf16', marks=pytest.mark.skipif(not native_bf16(), reason='no native bf16 in OpenVINO'))])
@pytest.mark.skipif(not installed('openvino'), reason='openvino or onnx not installed')
def test_openvino_compiles_a_shape_when_it_comes_again_and_keeps_a_few(net, precision):
    from sclle_basicsr.export import onnx_bytes
    run = backends.OpenVINOBackend(onnx_bytes(net), precision, 1)
    images = [torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(h)) * 0.5
              for h, w in [(24, 32), (40, 20), (16, 16), (20, 16), (16, 20)]]
    compiles = []
    for x in images[:2]:
        for _ in range(3):  # the first pass on the dynamic model, the second compiles, the third reuses
            check_close(torch.from_numpy(run(x.numpy())), reference(net, x), precision)
            compiles.append(run.compiles)
    assert compiles == [0, 1, 1, 1, 2, 2]
    for x in images[2:]:
        run(x.numpy()), run(x.numpy())
    assert run.compiles == 5 and list(run._static) == [tuple(x.shape) for x in images[1:]]  # the oldest dropped
    run.KEPT_PIXELS = 16 * 20
    run(images[0].numpy()), run(images[0].numpy())  # evicted: compiled again; beyond it only 320 pixels kept
    assert run.compiles == 6 and list(run._static) == [(1, 3, 16, 20), (1, 3, 24, 32)]


@pytest.mark.skipif(not installed('openvino'), reason='openvino or onnx not installed')
def test_openvino_tiled_image_compiles_one_shape(image):
    model = DCENet().eval()
    out = enhance_tensor(model, image, tile=16, tile_pad=7, backend='openvino')
    assert backend_for(model, 'openvino', CPU, 'fp32').compiles == 1
    assert (out - reference(model, image)).abs().max() <= 1e-5


def test_cli_backend_option(tmp_path, net):
    from PIL import Image

    from sclle_basicsr.enhance import main
    path = tmp_path / 'net.pth'
    torch.save({'params': net.state_dict()}, path)
    (tmp_path / 'in').mkdir()
    rgb = np.random.default_rng(0).integers(0, 120, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'in' / 'a.png')
    outputs = {}
    for backend in ['torch'] + [b for b in ('onnxruntime', 'openvino') if installed(b)]:
        out = tmp_path / backend
        assert main(['-i', str(tmp_path / 'in'), '-o', str(out), '--model_path', str(path), '--device', 'cpu',
                     '--backend', backend, '--quiet']) == 0
        outputs[backend] = np.asarray(Image.open(out / 'a.png')).astype(int)
    for backend, pixels in outputs.items():
        assert np.abs(pixels - outputs['torch']).max() <= 1, backend


def test_val_backend_option_reaches_the_model(tmp_path, net, monkeypatch):
    from basicsr.models import build_model

    from sclle_basicsr.inference import enhancer
    torch.save(net.state_dict(), tmp_path / 'bare.pth')
    used = []
    original = enhancer.backend_for
    monkeypatch.setattr(enhancer, 'backend_for', lambda *a: used.append(a[1]) or original(*a))
    for val, expected in [({}, select_backend('auto', CPU, 'fp32')), ({'backend': 'torch'}, 'torch')]:
        model = build_model({'model_type': 'SCLLLEModel', 'is_train': False, 'dist': False, 'num_gpu': 0,
                             'network_g': {'type': 'DCENet'}, 'val': val,
                             'path': {'pretrain_network_g': str(tmp_path / 'bare.pth'), 'param_key_g': None,
                                      'strict_load_g': True}})
        model.feed_data({'lq': torch.rand(1, 3, 16, 16)})
        model.test()
        assert used[-1] == expected
        assert (model.output - reference(net, model.lq)).abs().max() <= 1e-5


# ---- invalid numbers


@pytest.mark.parametrize('backend,precision', RUNS)
def test_invalid_pixels_refused_and_non_finite_output_is_an_error(net, backend, precision):
    x = torch.rand(1, 3, 12, 12)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        for bad, message in [(float('nan'), 'non-finite'), (float('inf'), 'non-finite'), (255.0, r'\[0, 1\]'),
                             (-0.5, r'\[0, 1\]')]:
            y = x.clone()
            y[0, 1, 3, 4] = bad
            with pytest.raises(InvalidImageError, match=message):
                enhance_tensor(net, y, precision=precision, backend=backend)
        enhance_tensor(net, x.clamp(0.005, 0.995) + 0.005, precision=precision, backend=backend)  # within tolerance
        broken = DCENet().eval()
        with torch.no_grad():
            broken.e_conv3.weight[0, 0, 0, 0] = float('nan')
        with pytest.raises(InvalidWeightsError, match=r'non-finite weights .* e_conv3.weight \(1 of 9216 values\)'):
            enhance_tensor(broken, x, precision=precision, backend=backend)
        with pytest.raises(NonFiniteOutputError, match='non-finite.*no image is written'):
            enhance_tensor(ZeroOverZero(), x, precision=precision, backend=backend)


class ZeroOverZero(torch.nn.Module):
    """Finite weights (none), NaN output: what only the output check can catch."""

    def forward(self, x):
        return (x - x) / (x - x)


def test_enhancer_refuses_float_images_out_of_range(net):
    enh = Enhancer(net=net, device='cpu', backend='torch')
    rgb = np.random.default_rng(0).uniform(0, 1, (10, 12, 3)).astype(np.float32)
    with pytest.raises(InvalidImageError, match='0..255'):
        enh.enhance(rgb * 255)
    rgb[2, 3, 1] = np.nan
    with pytest.raises(InvalidImageError, match='1 non-finite'):
        enh.enhance(rgb)


def test_non_finite_weights_refused_naming_file_and_tensor(tmp_path):
    sd = DCENet().state_dict()
    sd['e_conv4.bias'][3] = float('inf')
    sd['e_conv6.weight'][0, 0, 1, 1] = float('nan')
    torch.save({'params': sd}, tmp_path / 'nan.pth')
    with pytest.raises(CheckpointError, match=r'nan.pth \["params"\]: non-finite weights.*'
                       r'e_conv4.bias \(1 of 32 values\).*e_conv6.weight \(1 of'):
        load_enhancer(str(tmp_path / 'nan.pth'))


# ---- denormals, checkpoints


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


@pytest.mark.parametrize('backend,precision', RUNS)
def test_backends_leave_the_callers_denormal_mode_alone(net, image, backend, precision):
    """ONNX Runtime and OpenVINO set flush-to-zero on the calling thread; the caller's later maths must not change."""
    before = _denormals_flushed()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        Enhancer(net=net, backend=backend, precision=precision).enhance_tensor(image)
    assert _denormals_flushed() == before
    assert float(torch.tensor([1e-39]).mul(1.0)) == (0.0 if before else pytest.approx(1e-39))


@pytest.mark.parametrize('wrap', ['bare', 'params', 'params_ema', 'module', 'state_dict'])
def test_checkpoint_formats(tmp_path, net, image, wrap):
    sd = net.state_dict()
    if wrap == 'params':
        obj = {'params': sd}
    elif wrap == 'params_ema':  # params_ema preferred over params
        obj = {'params': DCENet().state_dict(), 'params_ema': sd}
    elif wrap == 'module':
        obj = {'params': {f'module.{k}': v for k, v in sd.items()}}
    elif wrap == 'state_dict':
        obj = {'meta': {}, 'state_dict': sd}
    else:
        obj = sd
    path = tmp_path / 'net.pth'
    torch.save(obj, path)
    loaded = load_enhancer(str(path))
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert (enhance_tensor(loaded, image, backend='torch') - reference(net, image)).abs().max() <= 1e-5


def test_unwrap_state_dict_errors():
    with pytest.raises(CheckpointError, match='f.pth: expected a state dict'):
        unwrap_state_dict([1, 2], 'f.pth')
    with pytest.raises(CheckpointError, match='f.pth: entry "params" is a list'):
        unwrap_state_dict({'params': [1]}, 'f.pth')
    assert unwrap_state_dict({'a': 1, 'module.b': 2}, 'f.pth') == ({'a': 1, 'module.b': 2}, None)


def test_checkpoint_infers_width_and_iterations(tmp_path):
    small = DCENet(num_iterations=4, num_features=8)
    torch.save(small.state_dict(), tmp_path / 's.pth')
    _, _, n_iter, nf = read_dcenet_state_dict(str(tmp_path / 's.pth'))
    assert (n_iter, nf) == (4, 8)
    x = torch.rand(1, 3, 12, 12)
    loaded = load_enhancer(str(tmp_path / 's.pth'))
    assert (enhance_tensor(loaded, x, backend='torch') - reference(small, x)).abs().max() <= 1e-5


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


@pytest.mark.parametrize('backend,precision', RUNS)
def test_released_weights_match_the_published_network(backend, precision):
    """Each backend with the released SCL-LLE weights against the network written out by hand, untiled and tiled."""
    from conftest import require_asset
    from test_dcenet_arch import reference_forward
    path = require_asset('weights', 'sclle_official.pth')
    state = torch.load(path, map_location='cpu')
    x = torch.rand(2, 3, 61, 83, generator=torch.Generator().manual_seed(3)) * 0.4
    with torch.no_grad():
        expected = reference_forward(state, x)[0]
    model = load_enhancer(path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', RuntimeWarning)
        for kwargs in ({}, {'tile': 32, 'tile_pad': 7}):
            out = enhance_tensor(model, x, precision=precision, backend=backend, **kwargs)
            check_close(out, expected, precision)
            assert out.mean() > x.mean()
