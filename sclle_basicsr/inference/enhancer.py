"""Enhancing tensors and arrays, the same for every backend: input checks, precision, tiling, output checks."""
import numpy as np
import torch

from sclle_basicsr.inference.backends import backend_for, resolve_device, select_backend
from sclle_basicsr.inference.checkpoints import load_enhancer
from sclle_basicsr.inference.memory_budget import parse_memory_size, tile_for_budget
from sclle_basicsr.inference.tiling import TILE_PAD, run_tiled

# Float pixels may stray this far outside [0, 1] (rounding, resampling); a 0..255 image does not pass.
RANGE_TOLERANCE = 0.01
LUMA_BT601 = (0.299, 0.587, 0.114)


class InvalidImageError(ValueError):
    """Pixels the network cannot enhance: none at all, non-finite, or float values outside [0, 1]."""


class NonFiniteOutputError(RuntimeError):
    """The network produced NaN or Inf (invalid weights): an error, never a written image."""


def _count_non_finite(x):
    return int((~(torch.isfinite(x) if torch.is_tensor(x) else np.isfinite(x))).sum())


def check_pixels(x):
    """Refuse non-finite pixels and float values outside [0, 1] (beyond :data:`RANGE_TOLERANCE`); x: tensor or array."""
    low, high = float(x.min()), float(x.max())  # NaN if any pixel is NaN
    if low >= -RANGE_TOLERANCE and high <= 1 + RANGE_TOLERANCE:  # False for NaN and Inf
        return
    bad = _count_non_finite(x)
    if bad:
        raise InvalidImageError(f'the image has {bad} non-finite pixel value(s) (NaN or Inf)')
    raise InvalidImageError(f'float pixels must lie in [0, 1], got values from {low:.4g} to {high:.4g} '
                            '(an image in 0..255? divide it by 255, or pass it as uint8)')


def check_output(y):
    if np.isfinite(float(y.min())) and np.isfinite(float(y.max())):  # min / max are NaN or infinite otherwise
        return
    bad = _count_non_finite(y)
    if bad:
        total = y.size if isinstance(y, np.ndarray) else y.numel()
        raise NonFiniteOutputError(f'the network produced {bad} non-finite value(s) (NaN or Inf) of {total}: '
                                   'its weights are invalid; no image is written')


def enhance_tensor(net, x, tile=0, tile_pad=TILE_PAD, precision='fp32', backend='auto', memory_budget=None):
    """Enhance ``x`` ((N, 3, H, W) float in [0, 1]) with ``net``; returns a tensor of x's dtype, shape and device.

    Args:
        net: a DCENet (or a wrapper with ``.module``), or any module mapping such images to images.
        tile: tile side in pixels (0: whole image). Memory then scales with the tile, not the image.  None: the
            whole image when it fits ``memory_budget``, else the largest tiles that fit
            (:func:`~sclle_basicsr.inference.memory_budget.tile_for_budget`).
        tile_pad: overlap added around each tile; ``>= 7`` (DCENet's receptive radius) gives the untiled result.
        precision: 'fp32'; 'bf16' (CPU with native bf16, or CUDA); 'fp16' (CUDA only).
        backend: 'auto', 'torch', 'onnxruntime' or 'openvino' (see :mod:`sclle_basicsr.inference.backends`).
        memory_budget: bytes one image may take when ``tile`` is None (default: a share of the memory free now).
    """
    if not torch.is_tensor(x) or x.dim() != 4 or x.size(1) != 3 or not x.is_floating_point():
        desc = f'shape {tuple(x.shape)}, {x.dtype}' if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f'enhance_tensor expects an (N, 3, H, W) float tensor, got {desc}')
    if (tile is not None and tile < 0) or tile_pad < 0:
        raise ValueError(f'tile ({tile}) and tile_pad ({tile_pad}) must be >= 0')
    if x.numel() == 0:
        raise InvalidImageError(f'the image is empty ({x.size(3)}x{x.size(2)} pixels, batch {x.size(0)}): nothing '
                                'to enhance')
    name = select_backend(backend, x.device, precision)
    if tile is None:
        tile = tile_for_budget(x.shape, x.device, name, precision, tile_pad, memory_budget)
    run = backend_for(net, name, x.device, precision)
    with torch.inference_mode():
        # the runtimes' path stays in NumPy, checks included (see sclle_basicsr.inference.backends)
        image = x.detach().float().numpy() if run.takes_numpy else x.float()
        check_pixels(image)
        out = run_tiled(run, image, tile, tile_pad)
        check_output(out)
        out = torch.from_numpy(out) if run.takes_numpy else out
        return out.to(device=x.device, dtype=x.dtype, memory_format=torch.contiguous_format)


class Enhancer:
    """Enhance images given as arrays or tensors; the result has the input's dtype and layout.

    ``Enhancer(model_path, device='auto', precision='fp32', tile=None, backend='auto').enhance(img)`` where ``img`` is

    * a NumPy array, uint8 / uint16 (full range) or float (in [0, 1]): ``HxWx3`` RGB, ``HxWx4`` RGBA (the alpha
      is returned untouched), ``HxW`` or ``HxWx1`` grayscale (replicated to RGB, enhanced, and converted back to
      one channel with the BT.601 luma weights 0.299 R + 0.587 G + 0.114 B, as PIL's ``convert('L')`` does);
    * a float tensor ``(N, 3, H, W)`` or ``(3, H, W)`` in [0, 1] (any device; moved to the enhancer's device and
      back).

    ``tile``: None (default) enhances each image whole when it fits ``memory_budget`` (bytes, or a size such as
    ``'4GiB'``; default: half the available RAM on a CPU, 80 % of the free GPU memory on CUDA, measured per image)
    and otherwise in the largest tiles that fit, with the same pixels; 0 always the whole image; a number that
    tile side.

    The backend is resolved and built when the Enhancer is made, so that a missing runtime or an unsupported
    precision fails before any image is read.
    """

    def __init__(self, model_path=None, device='auto', precision='fp32', tile=None, tile_pad=TILE_PAD, net=None,
                 backend='auto', memory_budget=None):
        self.device = resolve_device(device)
        self.backend = select_backend(backend, self.device, precision)
        if net is None:
            net = load_enhancer(model_path, self.device)
        self.net = net.to(self.device).eval()
        self.precision = precision
        self.tile = tile
        self.tile_pad = tile_pad
        self.memory_budget = None if memory_budget is None else parse_memory_size(memory_budget)
        backend_for(self.net, self.backend, self.device, precision)

    def enhance_tensor(self, x):
        """``(N, 3, H, W)`` float tensor in [0, 1] -> enhanced tensor, same dtype and device."""
        y = enhance_tensor(self.net, x.to(self.device), tile=self.tile, tile_pad=self.tile_pad,
                           precision=self.precision, backend=self.backend, memory_budget=self.memory_budget)
        return y.to(x.device)

    def enhance(self, img):
        if torch.is_tensor(img):
            if not img.is_floating_point():
                raise ValueError(f'tensors must be float in [0, 1], got {img.dtype}')
            if img.dim() == 3 and img.size(0) == 3:
                return self.enhance_tensor(img.unsqueeze(0))[0]
            return self.enhance_tensor(img)
        arr = np.asarray(img)
        if arr.ndim == 3 and arr.shape[2] == 1:
            return self.enhance(arr[:, :, 0])[:, :, None]
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
            raise ValueError(f'expected an HxW, HxWx1, HxWx3 or HxWx4 array, got shape {arr.shape}')
        if arr.dtype == np.uint8 or arr.dtype == np.uint16:
            scale = float(np.iinfo(arr.dtype).max)
        elif arr.dtype.kind == 'f':
            scale = None
        else:
            raise ValueError(f'expected a uint8, uint16 or float array, got {arr.dtype}')
        gray = arr.ndim == 2
        color = np.repeat(arr[:, :, None], 3, axis=2) if gray else arr[:, :, :3]
        x = torch.from_numpy(np.ascontiguousarray(color).astype(np.float32, copy=False))
        if scale is not None:
            x = x / scale
        with torch.inference_mode():
            y = self.enhance_tensor(x.permute(2, 0, 1).unsqueeze(0))[0].clamp_(0, 1)
            if gray:
                y = sum(w * y[c] for c, w in enumerate(LUMA_BT601)).clamp_(0, 1)
            else:
                y = y.permute(1, 2, 0)
            out = y.cpu().numpy()
        if scale is not None:
            out = np.rint(out * scale).astype(arr.dtype)
        else:
            out = out.astype(arr.dtype, copy=False)
        if arr.ndim == 3 and arr.shape[2] == 4:
            out = np.concatenate([out, arr[:, :, 3:]], axis=2)
        return out
