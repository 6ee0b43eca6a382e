"""UNIQUE as a BasicSR metric (sclle_basicsr.metrics.unique_metric): checkpoints in both published layouts, written
here from a randomly initialised network of the real architecture (no weights are downloaded), load strictly; the
score is the described network's and deterministic; sizes, odd inputs and missing weights are handled as documented.
"""
import re

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torch.nn import functional as F

from sclle_basicsr.metrics import MetricOptionError, MetricWeightsError, calculate_unique, load_unique
from sclle_basicsr.metrics import unique_metric as um
from sclle_basicsr.metrics.unscorable import UNSCORABLE_ERRORS, score_or_none


def textured(h, w, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = (100 + 60 * np.sin(xx / 7.0) * np.cos(yy / 11.0))[..., None] + rng.normal(0, 20, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def unique_files(unique_network, tmp_path_factory):
    """The random UNIQUE network and its weights as pyiqa's UNIQUE.pt (bare ``backbone.*``, ``fc.*``), as the original
    DataParallel model.pt (``module.`` prefixes) and wrapped in ``params``."""
    net, pyiqa_file = unique_network
    state = net.state_dict()
    root = tmp_path_factory.mktemp('unique_layouts')
    files = {'pyiqa': pyiqa_file, 'original': str(root / 'model.pt'), 'params': str(root / 'params.pt')}
    torch.save({f'module.{k}': v for k, v in state.items()}, files['original'])
    torch.save({'params': state}, files['params'])
    return net, files


@pytest.fixture(autouse=True)
def isolated(no_unique_weights):
    """The machine's own UNIQUE.pt, if any, stays out of the tests."""


def described_score(net, rgb01):
    """The score computed from the description, by another route than UNIQUENet.forward: the ResNet-34 without
    pooling and classifier, the outer product by einsum, signed square root, L2 norm, first output of the fc."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    trunk = torch.nn.Sequential(*list(net.backbone.children())[:-2])
    with torch.no_grad():
        f = trunk((rgb01 - mean) / std)
        n, c, h, w = f.shape
        gram = torch.einsum('ncp,ndp->ncd', f.reshape(n, c, -1), f.reshape(n, c, -1)) / (h * w)
        vec = F.normalize((torch.sign(gram) * torch.sqrt(gram.abs() + 1e-8)).reshape(n, -1), dim=1)
        return float(F.linear(vec, net.fc.weight, net.fc.bias)[0, 0])


def test_the_architecture_is_resnet34_with_bilinear_pooling(unique_files):
    net, _ = unique_files
    reference = torchvision.models.resnet34(weights=None).state_dict()
    state = net.state_dict()
    assert {f'backbone.{k}' for k in reference} | {'fc.weight', 'fc.bias'} == set(state)
    assert all(state[f'backbone.{k}'].shape == v.shape for k, v in reference.items())
    assert state['fc.weight'].shape == (2, 512 * 512)


@pytest.mark.parametrize('layout', ['pyiqa', 'original', 'params'])
def test_both_published_layouts_load_strictly(unique_files, layout):
    net, files = unique_files
    loaded = load_unique(files[layout])
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_score_is_the_described_network_and_deterministic(unique_files):
    net, files = unique_files
    img = textured(96, 128)
    score = calculate_unique(img, weights=files['pyiqa'])
    rgb01 = torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255
    assert score == pytest.approx(described_score(net, rgb01), abs=1e-5)
    assert calculate_unique(img, weights=files['pyiqa']) == score
    assert calculate_unique(img, weights=files['original']) == score
    other = calculate_unique(255 - img, weights=files['pyiqa'])  # it looks at the image
    assert abs(other - score) > 1e-3, (score, other)
    from basicsr.metrics import calculate_metric
    assert calculate_metric({'img': img, 'img2': img}, {'type': 'calculate_unique', 'weights': files['pyiqa']}) \
        == score


def test_the_network_is_built_once_per_weights_file(unique_files, monkeypatch):
    _, files = unique_files
    reads = []
    real_read = um.read_checkpoint
    monkeypatch.setattr(um, 'read_checkpoint', lambda path: reads.append(path) or real_read(path))
    for seed in range(3):
        calculate_unique(textured(64, 64, seed), weights=files['pyiqa'])
    calculate_unique(textured(64, 64), weights=files['original'])
    assert reads == [files['pyiqa'], files['original']]
    assert load_unique(files['pyiqa']) is load_unique(files['pyiqa'])


def test_large_images_are_shrunk_as_the_original_demo_does():
    assert um.resized_size(1728, 2304) == (768, 1024)  # a 4 MP VV image
    assert um.resized_size(2304, 1728) == (1024, 768)
    assert um.resized_size(1000, 1333) == (768, 1023)  # torchvision's Resize: int() of the longer side
    assert um.resized_size(700, 2000) is None and um.resized_size(768, 1024) is None  # one side not above 768
    img = textured(800, 900)
    x = um.unique_input(img)
    expected = np.asarray(Image.fromarray(img[:, :, ::-1].copy()).resize((864, 768), Image.Resampling.BILINEAR))
    assert x.shape == (1, 3, 768, 864)
    assert torch.equal(x, torch.from_numpy(expected.copy()).permute(2, 0, 1)[None].float() / 255)
    small = textured(40, 2000)
    assert torch.equal(um.unique_input(small)[0, 0], torch.from_numpy(small[:, :, 2].copy()).float() / 255)  # R


def test_odd_inputs_are_handled_or_refused(unique_files):
    _, files = unique_files
    img = textured(64, 80)
    score = calculate_unique(img, weights=files['pyiqa'])
    assert calculate_unique(img.astype(np.float32), weights=files['pyiqa']) == score  # 8-bit values as floats
    assert calculate_unique(img.transpose(2, 0, 1), weights=files['pyiqa'], input_order='CHW') == score
    gray = img[:, :, 1]
    assert calculate_unique(gray, weights=files['pyiqa']) == calculate_unique(np.repeat(gray[..., None], 3, 2),
                                                                             weights=files['pyiqa'])
    for bad, message in ((textured(31, 200), 'at least 32x32'), (np.zeros((64, 64, 4), np.uint8), '3-channel'),
                         (img * 3.0, r'\[0, 255\]'), (np.full((64, 64, 3), np.nan), 'finite')):
        with pytest.raises(ValueError, match=message):  # the validation names the image and leaves it out
            calculate_unique(bad, weights=files['pyiqa'])
    with pytest.raises(MetricOptionError, match="better must be 'higher'"):
        calculate_unique(img, weights=files['pyiqa'], better='lower')


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the error on a machine without CUDA')
def test_a_device_that_is_absent_is_an_option_error(unique_files):
    with pytest.raises(MetricOptionError, match='option device'):
        calculate_unique(textured(64, 64), weights=unique_files[1]['pyiqa'], device='cuda')


def test_weights_come_from_the_option_the_variable_or_pyiqas_cache(unique_files, monkeypatch, tmp_path):
    _, files = unique_files
    cache = tmp_path / 'torch_home' / 'hub' / 'pyiqa' / 'UNIQUE.pt'  # TORCH_HOME of the fixture no_unique_weights
    assert um.pyiqa_cache_path() == str(cache)
    with pytest.raises(MetricWeightsError) as exc:
        um.find_unique_weights()
    message = str(exc.value)
    assert message.startswith(f'UNIQUE weights not found: {cache} (from pyiqa\'s cache')
    for where in (um.PYIQA_URL, um.PYIQA_RELEASE_URL, um.ORIGINAL_REPO, f'put it at {cache}', um.WEIGHTS_ENV,
                  'metric option weights'):
        assert where in message
    assert '\n' not in message
    cache.parent.mkdir(parents=True)
    cache.symlink_to(files['pyiqa'])
    assert um.find_unique_weights() == str(cache)
    monkeypatch.setenv(um.WEIGHTS_ENV, files['original'])
    assert um.find_unique_weights() == files['original']
    assert um.find_unique_weights(files['params']) == files['params']
    # a path that is given and missing is an error, not a silent fall-back to the variable or the cache
    for option, variable, expected in ((str(tmp_path / 'none.pt'), files['original'], 'the metric option weights'),
                                       (None, str(tmp_path / 'gone.pt'), f'${um.WEIGHTS_ENV}')):
        monkeypatch.setenv(um.WEIGHTS_ENV, variable)
        with pytest.raises(MetricWeightsError, match=r'not found: .*(none|gone)\.pt \(from ' + re.escape(expected)):
            calculate_unique(textured(64, 64), weights=option)


def test_unusable_weight_files_name_the_file(unique_files, tmp_path):
    net, _ = unique_files
    state = net.state_dict()
    text = tmp_path / 'notes.pt'
    text.write_text('not a checkpoint')
    no_fc = tmp_path / 'no_fc.pt'
    torch.save({k: v for k, v in state.items() if not k.startswith('fc.')}, no_fc)
    one_output = tmp_path / 'one_output.pt'  # UNIQUE trained without uncertainty: fc has one output
    torch.save(dict(state, **{'fc.weight': state['fc.weight'][:1], 'fc.bias': state['fc.bias'][:1]}), one_output)
    extra = tmp_path / 'extra.pt'
    torch.save(dict(state, **{'representation.scale': torch.ones(1)}), extra)
    nan = tmp_path / 'nan.pt'
    torch.save(dict(state, **{'fc.bias': torch.tensor([float('nan'), 0.0])}), nan)
    for path, expected in ((text, 'cannot be read as a PyTorch checkpoint'), (no_fc, 'missing fc.bias, fc.weight'),
                           (one_output, r'shape mismatch: fc\.weight: \(1, 262144\) in the file, \(2, 262144\)'),
                           (extra, 'unexpected representation.scale'), (nan, r'non-finite weights .*fc\.bias')):
        with pytest.raises(MetricWeightsError, match=expected) as exc:
            calculate_unique(textured(64, 64), weights=str(path))
        assert str(exc.value).startswith(f'UNIQUE weights {path}') and '\n' not in str(exc.value)


def test_a_weights_error_ends_the_validation_instead_of_leaving_out_each_image(tmp_path):
    assert not issubclass(MetricWeightsError, UNSCORABLE_ERRORS)
    warnings = []
    with pytest.raises(MetricWeightsError, match='UNIQUE weights not found'):
        score_or_none('unique', lambda: calculate_unique(textured(64, 64), weights=str(tmp_path / 'x.pt')),
                      'a.png', warnings.append)
    assert warnings == []
