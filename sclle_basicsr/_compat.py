"""Import fixes for the pinned stack.  Importing this module applies only the first; the second is applied by
whoever builds an mmseg model (:class:`~sclle_basicsr.archs.segmentor_arch.FrozenDeepLabV3Plus`).

* basicsr 1.4.2 imports ``torchvision.transforms.functional_tensor``, which torchvision renamed to
  ``_functional_tensor``; without the alias ``import basicsr`` fails, so the package cannot work without it.
* mmsegmentation imports ``mmcv.ops``, which loads the compiled ``mmcv._ext``; mmcv-lite ships none, and a full
  mmcv built for another torch or CUDA has one that fails to load (undefined symbols), the usual case on GPU
  stacks: mmcv 2.1 wheels exist only for old torch, and mmsegmentation 1.2 refuses mmcv 2.2.  DeepLabv3+ needs no
  compiled op, so a stand-in (:func:`install_mmcv_ext_standin`) lets mmseg import, and any compiled op raises
  when *called*.  It is installed only when the real extension is absent or cannot be imported.

The fixes to BasicSR's training and test runners are in :mod:`sclle_basicsr.runner.basicsr_runner`.
"""
import importlib
import importlib.util
import sys
import types
import warnings

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
    """Raised when code calls an mmcv compiled op that this environment does not have."""


def _missing_op(op_name, why):

    def op(*args, **kwargs):
        raise CompiledOpUnavailable(
            f'mmcv compiled op "{op_name}" was called, but {why}. Install a full mmcv built for this torch and CUDA '
            'to use it; the SCL-LLE segmentor (DeepLabv3+) needs none.')

    op.__name__ = op_name
    return op


def _make_ext_standin(why):
    module = types.ModuleType(MMCV_EXT, 'Stand-in for the missing compiled mmcv extension (sclle_basicsr).')
    module.__spec__ = importlib.util.spec_from_loader(MMCV_EXT, loader=None)
    module.__file__ = None
    module.IS_SCLLE_STANDIN = True
    module.WHY = why

    def __getattr__(attr):  # mmcv's ext_loader asserts hasattr(ext, op) at import time
        if attr.startswith('__'):
            raise AttributeError(attr)
        return _missing_op(attr, why)

    module.__getattr__ = __getattr__
    return module


def install_mmcv_ext_standin():
    """Install the stand-in when mmcv is installed and its compiled extension is absent (mmcv-lite) or fails to
    import (a full mmcv built for another torch / CUDA: a warning says why, once); True when installed."""
    if MMCV_EXT in sys.modules or importlib.util.find_spec('mmcv') is None:
        return False
    if importlib.util.find_spec(MMCV_EXT) is None:
        why = f'mmcv-lite has no compiled extension ({MMCV_EXT})'
    else:
        try:
            importlib.import_module(MMCV_EXT)
            return False
        except (ImportError, OSError) as err:  # undefined symbol, missing libcudart, wrong ABI
            why = f'the compiled extension {MMCV_EXT} of this mmcv fails to import ({type(err).__name__}: {err})'
            warnings.warn(f'{why}; using a stand-in, since the SCL-LLE segmentor (DeepLabv3+) needs no compiled op '
                          '(any compiled op raises when called)', RuntimeWarning, stacklevel=2)
    sys.modules[MMCV_EXT] = _make_ext_standin(why)
    return True


alias_torchvision_functional_tensor()
