"""Each compatibility fix: the pinned stack fails without it (in a fresh interpreter) and works with it; importing
the package applies none but the torchvision alias."""
import subprocess
import sys

import pytest
import torch

from sclle_basicsr import _compat


def run_python(code):
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)


def test_basicsr_import_needs_the_torchvision_alias():
    bare = run_python('import basicsr')
    assert bare.returncode != 0 and 'functional_tensor' in bare.stderr
    fixed = run_python('from sclle_basicsr import _compat; import basicsr; '
                       'import torchvision.transforms.functional_tensor as f; '
                       'import torchvision.transforms._functional_tensor as g; assert f is g')
    assert fixed.returncode == 0, fixed.stderr


def test_mmseg_import_needs_the_mmcv_ext_standin():
    bare = run_python('import mmseg.models')
    assert bare.returncode != 0 and 'mmcv._ext' in bare.stderr
    fixed = run_python('from sclle_basicsr import _compat; _compat.install_mmcv_ext_standin(); import mmseg.models; '
                       'import mmcv._ext as e; assert e.__spec__ is not None and e.IS_SCLLE_STANDIN')
    assert fixed.returncode == 0, fixed.stderr


# A full mmcv whose compiled extension is found but fails to load, as on GPU stacks where mmcv was built for
# another torch: a finder that serves mmcv._ext with a loader that raises the dynamic linker's error.
BROKEN_EXT = """
import importlib.abc, importlib.util, sys
class BrokenExt(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name == 'mmcv._ext' else None
    def create_module(self, spec):
        raise ImportError('mmcv/_ext.cpython-311-x86_64-linux-gnu.so: undefined symbol: _ZN3c104cuda9SetDeviceEi')
    def exec_module(self, module):
        pass
sys.meta_path.insert(0, BrokenExt())
"""


def test_mmseg_import_with_a_broken_compiled_extension_needs_the_standin():
    bare = run_python(BROKEN_EXT + 'import mmseg.models')
    assert bare.returncode != 0 and 'undefined symbol' in bare.stderr
    fixed = run_python(BROKEN_EXT + """
import warnings
from sclle_basicsr import _compat
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    assert _compat.install_mmcv_ext_standin()
print([str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)][0])
import mmseg.models
import mmcv._ext as ext
assert ext.IS_SCLLE_STANDIN
import torch
from mmcv.ops import nms
try:
    nms(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), torch.tensor([1.0]), 0.5)
except _compat.CompiledOpUnavailable as err:
    print(err)
""")
    assert fixed.returncode == 0, fixed.stderr
    warning, error = fixed.stdout.strip().splitlines()
    assert 'fails to import (ImportError: ' in warning and 'undefined symbol' in warning
    assert 'using a stand-in' in warning
    assert error.startswith('mmcv compiled op "nms" was called, but the compiled extension mmcv._ext of this mmcv '
                            'fails to import')


def test_standin_raises_when_a_compiled_op_is_called():
    _compat.install_mmcv_ext_standin()
    from mmcv.ops import nms
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(_compat.CompiledOpUnavailable, match='nms'):
        nms(boxes, torch.tensor([1.0]), 0.5)


def test_standin_not_installed_when_the_real_extension_imports(monkeypatch):
    real_find_spec, real_import = _compat.importlib.util.find_spec, _compat.importlib.import_module
    imported = []
    monkeypatch.delitem(sys.modules, _compat.MMCV_EXT, raising=False)
    monkeypatch.setattr(_compat.importlib.util, 'find_spec',
                        lambda name, *a: object() if name == _compat.MMCV_EXT else real_find_spec(name, *a))
    monkeypatch.setattr(_compat.importlib, 'import_module',
                        lambda name: imported.append(name) if name == _compat.MMCV_EXT else real_import(name))
    assert _compat.install_mmcv_ext_standin() is False
    assert imported == [_compat.MMCV_EXT] and _compat.MMCV_EXT not in sys.modules


# BasicSR's and mmcv's own objects, as a fresh interpreter sees them (printed as module:qualname).
OWN_OBJECTS = """
import sys, basicsr.test, basicsr.train, basicsr.utils.options
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.utils import dist_util
name = lambda f: f'{f.__module__}:{f.__qualname__}'
print(name(basicsr.train.load_resume_state), name(basicsr.train.EnlargedSampler), name(EnlargedSampler.__iter__),
      name(EnlargedSampler.set_epoch), name(dist_util._init_dist_pytorch), name(basicsr.utils.options.init_dist),
      sys.modules.get('mmcv._ext', 'no-mmcv-ext'))
print(name(basicsr.train.parse_options), name(basicsr.train.build_model), name(basicsr.train.CPUPrefetcher),
      name(basicsr.train.CUDAPrefetcher), name(basicsr.test.parse_options), name(sys.excepthook))
"""
BASICSR_OWN = ('basicsr.train:load_resume_state basicsr.data.data_sampler:EnlargedSampler '
               'basicsr.data.data_sampler:EnlargedSampler.__iter__ basicsr.data.data_sampler:EnlargedSampler.set_epoch '
               'basicsr.utils.dist_util:_init_dist_pytorch basicsr.utils.dist_util:init_dist no-mmcv-ext '
               'basicsr.utils.options:parse_options basicsr.models:build_model '
               'basicsr.data.prefetch_dataloader:CPUPrefetcher basicsr.data.prefetch_dataloader:CUDAPrefetcher '
               'basicsr.utils.options:parse_options sys:excepthook')


def test_importing_the_package_changes_nothing_in_basicsr_or_mmcv():
    imports = ('import sclle_basicsr, mmcv; from sclle_basicsr import Enhancer, archs, losses, models, data; '
               'from sclle_basicsr.archs import segmentor_arch; from sclle_basicsr.losses import scl_losses; ')
    proc = run_python(imports + OWN_OBJECTS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == BASICSR_OWN.split()


def test_prepare_basicsr_runner_installs_the_runner_fixes():
    proc = run_python('import sclle_basicsr; sclle_basicsr.prepare_basicsr_runner(); '
                      'sclle_basicsr.prepare_basicsr_runner(); ' + OWN_OBJECTS)
    assert proc.returncode == 0, proc.stderr
    runner = 'sclle_basicsr.runner.'
    assert proc.stdout.split() == [
        runner + 'basicsr_runner:load_resume_state', runner + 'basicsr_runner:ResumableEnlargedSampler',
        'basicsr.data.data_sampler:EnlargedSampler.__iter__', 'basicsr.data.data_sampler:EnlargedSampler.set_epoch',
        'basicsr.utils.dist_util:_init_dist_pytorch', runner + 'basicsr_runner:init_dist', 'no-mmcv-ext',
        runner + 'run_guards:parse_training_options', runner + 'run_guards:build_training_model',
        runner + 'prefetchers:ClosingCPUPrefetcher', runner + 'prefetchers:StoppableCUDAPrefetcher',
        runner + 'run_guards:parse_test_options',
        'sclle_basicsr.utils.run_errors:install_one_line_errors.<locals>.hook']
