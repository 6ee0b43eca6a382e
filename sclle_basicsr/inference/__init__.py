"""The one inference path: the BasicSR test model, ``sclle-enhance``, ``sclle-export``, the evaluation scripts and the
benchmark use it.

* :mod:`.checkpoints`: the package's state-dict unwrapper and the validated DCENet reader (:func:`load_enhancer`);
* :mod:`.backends`: PyTorch, ONNX Runtime and OpenVINO behind one call, and the ``auto`` rule;
* :mod:`.tiling`: tiled inference with bounded memory;
* :mod:`.memory_budget`: the tile chosen from a memory budget (by default, a share of the memory free now);
* :mod:`.enhancer`: :func:`enhance_tensor` and :class:`Enhancer`, which check the pixels and the output the same way
  for every backend.
"""
from sclle_basicsr.inference.backends import (
    BACKENDS,
    PRECISIONS,
    BackendUnavailable,
    InvalidWeightsError,
    flush_denormals,
    resolve_device,
    select_backend,
)
from sclle_basicsr.inference.checkpoints import (
    CheckpointError,
    load_enhancer,
    read_dcenet_state_dict,
    unwrap_state_dict,
)
from sclle_basicsr.inference.enhancer import (
    Enhancer,
    InvalidImageError,
    NonFiniteOutputError,
    check_pixels,
    enhance_tensor,
)
from sclle_basicsr.inference.memory_budget import MemoryBudgetError, parse_memory_size

__all__ = [
    'BACKENDS', 'PRECISIONS', 'BackendUnavailable', 'CheckpointError', 'Enhancer', 'InvalidImageError',
    'InvalidWeightsError', 'MemoryBudgetError', 'NonFiniteOutputError', 'check_pixels', 'enhance_tensor',
    'flush_denormals', 'load_enhancer', 'parse_memory_size', 'read_dcenet_state_dict', 'resolve_device',
    'select_backend', 'unwrap_state_dict'
]
