"""Shared fixtures: the repository root and shared assets (skipped with a reason when absent)."""
import os.path as osp

import pytest

import sclle_basicsr  # noqa: F401  (compat fixes and registration before any test imports basicsr)
from sclle_basicsr.inference.signal_stack import current_signal_stack
from sclle_basicsr.utils.assets import ENV_VAR, REPO_ROOT, asset_path

# The Cityscapes DeepLabv3+ config shrunk to a few thousand parameters (ResNet-18 layout, 8 base channels):
# fast on CPU, random or test-saved weights, real mmseg code path.
TINY_SEGMENTOR_CFG = {
    'model.backbone.depth': 18,
    'model.backbone.base_channels': 8,
    'model.backbone.stem_channels': 8,
    'model.decode_head.in_channels': 64,
    'model.decode_head.c1_in_channels': 8,
    'model.decode_head.c1_channels': 4,
    'model.decode_head.channels': 8,
}


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``cuda`` where there is no CUDA device, saying so (``make gpu-check`` runs them)."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason=f'needs a CUDA GPU: torch.cuda.is_available() is false here (torch '
                                   f'{torch.__version__}, built for CUDA {torch.version.cuda}); run make gpu-check on '
                                   'a GPU machine')
    for item in items:
        if item.get_closest_marker('cuda') is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def signal_stack_kept():
    """Every test leaves the thread's alternate signal stack as it found it: a runtime that swaps it (OpenVINO's CPU
    plugin does, see inference/signal_stack.py) makes a later test's signal a SIGSEGV, far from the cause."""
    before = current_signal_stack()
    yield
    assert current_signal_stack() == before, 'this test changed the alternate signal stack (see signal_stack.py)'


def require_asset(*parts):
    """Path of an asset, or skip the test saying where it was looked for."""
    path = asset_path(*parts)
    if not osp.exists(path):
        pytest.skip(f'asset {path} not found (set {ENV_VAR} to the shared assets folder)')
    return path


@pytest.fixture(scope='session')
def model_path(tmp_path_factory):
    """A BasicSR checkpoint of a seeded DCENet that visibly brightens (its last layer scaled up), for the inference
    and CLI tests."""
    import torch

    from sclle_basicsr.archs.dcenet_arch import DCENet
    torch.manual_seed(0)
    net = DCENet()
    with torch.no_grad():
        net.e_conv7.weight.mul_(4)
    path = tmp_path_factory.mktemp('model') / 'net_g.pth'
    torch.save({'params': net.state_dict()}, path)
    return str(path)


@pytest.fixture
def repo_root():
    return REPO_ROOT


@pytest.fixture
def nan_weights(tmp_path):
    """A bare DCENet state_dict with one NaN bias: broken weights every entry point must refuse."""
    import torch

    from sclle_basicsr.archs.dcenet_arch import DCENet
    net = DCENet()
    with torch.no_grad():
        net.e_conv7.bias[0] = float('nan')
    path = tmp_path / 'nan_dcenet.pth'
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def no_unique_weights(monkeypatch, tmp_path):
    """No UNIQUE weights to be found: no $SCLLE_UNIQUE_WEIGHTS, an empty torch hub folder (so this machine's own
    pyiqa cache stays out of the test); returns the pyiqa cache path UNIQUE then looks at."""
    from sclle_basicsr.metrics import load_unique
    from sclle_basicsr.metrics.unique_metric import WEIGHTS_ENV, pyiqa_cache_path
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    load_unique.cache_clear()
    return pyiqa_cache_path()


@pytest.fixture(scope='session')
def unique_network(tmp_path_factory):
    """A randomly initialised UNIQUE network (its fc drawn from N(0, 1), so that scores are of about unit size) and
    its weights in pyiqa's layout (a bare state dict, ``backbone.*`` and ``fc.*``): nothing is downloaded."""
    import torch

    from sclle_basicsr.metrics.unique_metric import UNIQUENet
    torch.manual_seed(0)
    net = UNIQUENet().eval()
    with torch.no_grad():
        net.fc.weight.normal_(0, 1.0)
    path = tmp_path_factory.mktemp('unique') / 'UNIQUE.pt'
    torch.save(net.state_dict(), path)
    return net, str(path)


def load_script(name):
    """``scripts/<name>.py`` as a module, so that a test calls its ``main`` in-process (a subprocess would pay the
    torch and BasicSR imports again)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'{name}_script', osp.join(REPO_ROOT, 'scripts', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
