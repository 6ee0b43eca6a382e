"""Import fixes for the pinned stack.  Importing this module applies only the first; the second is applied by
whoever builds an mmseg model (:class:`~sclle_basicsr.archs.segmentor_arch.FrozenDeepLabV3Plus`).

* basicsr 1.4.2 imports ``torchvision.transforms.functional_tensor``, which torchvision renamed to
  ``_functional_tensor``; without the alias ``import basicsr`` fails, so the package cannot work without it.
* mmsegmentation imports ``mmcv.ops``, which loads the compiled ``mmcv._ext``; mmcv-lite ships none.  DeepLabv3+
  needs no compiled op, so a stand-in (:func:`install_mmcv_ext_standin`) lets mmseg import, and any compiled op
  raises when *called*.  It is installed only when the real extension is absent.

The fixes to BasicSR's training and test runners are in :mod:`sclle_basicsr.basicsr_runner`.
"""
import importlib
import importlib.util
import sys
import types

MMCV_EXT = 'mmcv._ext'


def alias_torchvision_functional_tensor():
    """Make ``torchvision.transforms.functional_tensor`` importable again (renamed in torchvision 0.17)."""
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        importlib.import_module(name)
    except ImportError:
        sys.modules[name] = importlib.import_module('torchvision.transforms._functional_tensor')


class CompiledOpUnavailable(RuntimeError):
    """Raised when code calls an mmcv compiled op under mmcv-lite."""


def _missing_op(op_name):

    def op(*args, **kwargs):
        raise CompiledOpUnavailable(
            f'mmcv compiled op "{op_name}" was called, but mmcv-lite has no compiled extension ({MMCV_EXT}). '
            'Install the full mmcv package to use it; the SCL-LLE segmentor (DeepLabv3+) needs none.')

    op.__name__ = op_name
    return op


def _make_ext_standin():
    module = types.ModuleType(MMCV_EXT, 'Stand-in for the missing compiled mmcv extension (sclle_basicsr).')
    module.__spec__ = importlib.util.spec_from_loader(MMCV_EXT, loader=None)
    module.__file__ = None
    module.IS_SCLLE_STANDIN = True

    def __getattr__(attr):  # mmcv's ext_loader asserts hasattr(ext, op) at import time
        if attr.startswith('__'):
            raise AttributeError(attr)
        return _missing_op(attr)

    module.__getattr__ = __getattr__
    return module


def install_mmcv_ext_standin():
    """Install the stand-in only when mmcv is installed and its compiled extension is not."""
    if MMCV_EXT in sys.modules or importlib.util.find_spec('mmcv') is None:
        return False
    if importlib.util.find_spec(MMCV_EXT) is not None:
        return False
    sys.modules[MMCV_EXT] = _make_ext_standin()
    return True


alias_torchvision_functional_tensor()
