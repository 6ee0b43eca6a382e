"""The one inference path: the BasicSR test model, ``sclle-enhance``, ``sclle-export``, the evaluation scripts and the
benchmark use it.

* :mod:`.checkpoints`: the validated DCENet reader (:func:`load_enhancer`), on the package's one checkpoint reader
  (:mod:`sclle_basicsr.utils.checkpoints`);
* :mod:`.onnx_graph`: the ONNX graph the runtimes run and ``sclle-export`` writes;
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
    flush_denormals,
    resolve_device,
    select_backend,
)
from sclle_basicsr.inference.checkpoints import load_enhancer, read_dcenet_state_dict
from sclle_basicsr.inference.enhancer import (
    Enhancer,
    InvalidImageError,
    NonFiniteOutputError,
    check_pixels,
    enhance_tensor,
)
from sclle_basicsr.inference.memory_budget import MemoryBudgetError, parse_memory_size
from sclle_basicsr.utils.checkpoints import CheckpointError, InvalidWeightsError, unwrap_state_dict

__all__ = [
    'BACKENDS', 'PRECISIONS', 'BackendUnavailable', 'CheckpointError', 'Enhancer', 'InvalidImageError',
    'InvalidWeightsError', 'MemoryBudgetError', 'NonFiniteOutputError', 'check_pixels', 'enhance_tensor',
    'flush_denormals', 'load_enhancer', 'parse_memory_size', 'read_dcenet_state_dict', 'resolve_device',
    'select_backend', 'unwrap_state_dict'
]
