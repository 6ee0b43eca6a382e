"""Loss arithmetic in float32 under autocast.

Autocast runs the heavy parts of a step (DCE-Net, VGG-16, the segmentor) in fp16 or bf16; the losses' own sums must
not follow.  Autocast re-casts some ops whatever their inputs (``torch.bmm`` to the autocast dtype), and others run in
their inputs' dtype (``scatter_add``, ``sum``, ``pow`` on CPU): Gram entries of the Caffe VGG features pass fp16's
65504, per-class sums over a 384x384 crop pass it too, and squared channel-mean differences (about 1e-8) fall below
fp16's smallest subnormal.  :func:`float32_math` switches autocast off for a block and :func:`as_float32` casts the
half-precision tensors it is given (float64 stays float64, for gradcheck).
"""
import contextlib

import torch

HALF_DTYPES = (torch.float16, torch.bfloat16)


@contextlib.contextmanager
def float32_math(device_type):
    """Autocast off for the block on ``device_type`` (a no-op where autocast does not exist, e.g. ``meta``)."""
    if torch.amp.is_autocast_available(device_type):
        with torch.autocast(device_type, enabled=False):
            yield
    else:
        yield


def as_float32(tensor):
    """``tensor`` in float32 if it is fp16 / bf16, else unchanged."""
    return tensor.float() if tensor.dtype in HALF_DTYPES else tensor
