"""The one inference path: the BasicSR test model, ``sclle-enhance``, ``sclle-export`` and the benchmark use it.

* :func:`load_enhancer` loads a DCENet from a BasicSR checkpoint (``params_ema`` preferred, else ``params``) or a
  bare state dict (the released Zero-DCE / SCL-LLE files); the width and number of curve iterations are read from
  the weights, and anything else fails with a message naming the file.
* :func:`enhance_tensor` runs a DCENet on an ``(N, 3, H, W)`` float tensor in ``[0, 1]`` under
  ``torch.inference_mode`` with denormals flushed, optionally tiled (bounded memory), in fp32, bf16 or (CUDA) fp16.

The fast path never calls :meth:`DCENet.forward` (left untouched for training); it reads the network's
parameters and runs a fused forward:

* channels-last activations, ReLU fused into the oneDNN convolution (``mkldnn._convolution_pointwise``);
* no ``torch.cat``: the weights of ``e_conv5/6/7`` are split into the halves acting on the two concatenated
  inputs, and the second half-convolution accumulates in place into the first (oneDNN ``add`` post-op);
* the eight curve iterations run in place, in bands of rows that stay in cache, with the same arithmetic as
  :func:`~sclle_basicsr.archs.dcenet_arch.apply_curves` (``x + A * (x * x - x)``).

Without oneDNN (CUDA, or a build without it) the same split-weight forward runs on ``F.conv2d``.

Tiling: the 7 stacked 3x3 convolutions give DCENet a 15x15 receptive field, so a tile grown by ``tile_pad >= 7``
pixels on each side (clamped at the image border, where the zero padding then matches) reproduces the untiled
output exactly, up to float summation order.
"""
import contextlib
import math
import os.path as osp
import warnings
import weakref

import torch
import torch.nn.functional as F

from sclle_basicsr.archs.dcenet_arch import DCENet

PRECISIONS = ('fp32', 'bf16', 'fp16')
RECEPTIVE_RADIUS = 7  # 7 stacked 3x3 convolutions
_CONV_NAMES = tuple(f'e_conv{i}' for i in range(1, 8))

# ----------------------------------------------------------------------------------------------------------------
# Loading


class CheckpointError(ValueError):
    """A checkpoint that is not a DCENet state dict (the message names the file and what is wrong)."""


def _unwrap_state_dict(obj, path):
    if not isinstance(obj, dict):
        raise CheckpointError(f'{path}: expected a state dict or a BasicSR checkpoint (a dict), '
                              f'got {type(obj).__name__}')
    for key in ('params_ema', 'params'):
        if key in obj:
            sd = obj[key]
            if not isinstance(sd, dict):
                raise CheckpointError(f'{path}: entry "{key}" is a {type(sd).__name__}, not a state dict')
            return sd, key
    if 'state_dict' in obj and isinstance(obj['state_dict'], dict):
        return obj['state_dict'], 'state_dict'
    return obj, None


def read_dcenet_state_dict(model_path):
    """``(state_dict, source_key, num_iterations, num_features)`` from a checkpoint file, validated."""
    if model_path is None:
        raise CheckpointError('no model path given')
    if not osp.isfile(model_path):
        raise CheckpointError(f'model file {model_path} not found')
    try:
        obj = torch.load(model_path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001  (pickle, zip, unsupported type: all mean "not a checkpoint")
        raise CheckpointError(f'{model_path}: cannot be read as a PyTorch checkpoint ({err})') from err
    sd, source = _unwrap_state_dict(obj, model_path)
    # DataParallel / DistributedDataParallel prefixes
    if sd and all(isinstance(k, str) and k.startswith('module.') for k in sd):
        sd = {k[len('module.'):]: v for k, v in sd.items()}
    where = f'{model_path}' + (f' ["{source}"]' if source else '')
    for name in ('e_conv1.weight', 'e_conv7.weight'):
        if name not in sd or not torch.is_tensor(sd[name]) or sd[name].dim() != 4:
            keys = ', '.join(list(sd)[:8]) + (' ...' if len(sd) > 8 else '')
            raise CheckpointError(f'{where}: not a DCENet state dict (missing or malformed "{name}"; '
                                  f'keys: {keys or "none"})')
    num_features = sd['e_conv1.weight'].shape[0]
    out7 = sd['e_conv7.weight'].shape[0]
    if out7 % 3:
        raise CheckpointError(f'{where}: e_conv7 has {out7} output channels, not a multiple of 3')
    num_iterations = out7 // 3
    reference = DCENet(num_iterations=num_iterations, num_features=num_features).state_dict()
    missing = [k for k in reference if k not in sd]
    unexpected = [k for k in sd if k not in reference]
    bad_shapes = [f'{k}: {tuple(sd[k].shape)} in file, {tuple(v.shape)} expected' for k, v in reference.items()
                  if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or bad_shapes:
        parts = []
        if missing:
            parts.append('missing keys: ' + ', '.join(missing))
        if unexpected:
            parts.append('unexpected keys: ' + ', '.join(unexpected))
        if bad_shapes:
            parts.append('shape mismatch: ' + '; '.join(bad_shapes))
        raise CheckpointError(f'{where}: does not match DCENet(num_iterations={num_iterations}, '
                              f'num_features={num_features}): ' + ' | '.join(parts))
    return sd, source, num_iterations, num_features


def resolve_device(device='auto'):
    """``'auto'`` -> CUDA when available, else CPU; ``'cuda'`` without CUDA is an error."""
    device = 'auto' if device is None else str(device)
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dev = torch.device(device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'device "{device}" requested but CUDA is not available (torch {torch.__version__})')
    return dev


def load_enhancer(model_path, device='cpu'):
    """A DCENet in eval mode, without gradients, on ``device``, loaded from ``model_path``.

    Accepts BasicSR checkpoints (``params_ema`` preferred over ``params``) and bare state dicts. Subnormal
    weights are flushed by DCENet's load hook. Raises :class:`CheckpointError` naming the file otherwise.
    """
    sd, _, num_iterations, num_features = read_dcenet_state_dict(model_path)
    net = DCENet(num_iterations=num_iterations, num_features=num_features)
    net.load_state_dict(sd, strict=True)
    net.eval().requires_grad_(False)
    return net.to(resolve_device(device))


# ----------------------------------------------------------------------------------------------------------------
# Denormals


def _denormals_flushed():
    """Whether the calling thread currently flushes denormals (probed: a subnormal times 1 reads back as 0)."""
    probe = torch.tensor([1e-39], dtype=torch.float32)
    return float(probe.mul(1.0)) == 0.0


@contextlib.contextmanager
def flush_denormals(enabled=True):
    """Flush denormals to zero inside the block and restore the previous setting after it."""
    if not enabled:
        yield
        return
    previous = _denormals_flushed()
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(previous)


# ----------------------------------------------------------------------------------------------------------------
# Fused forward


def _mkldnn_ops():
    try:
        return torch.ops.mkldnn._convolution_pointwise, torch.ops.mkldnn._convolution_pointwise_.binary
    except (AttributeError, RuntimeError):
        return None


_MKLDNN = _mkldnn_ops() if torch.backends.mkldnn.is_available() else None
_PREPARED = weakref.WeakKeyDictionary()


def native_bf16_supported():
    """Whether this CPU runs oneDNN bf16 kernels natively (AVX512-BF16 / AMX); without them bf16 is emulated."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class _Weights:
    """DCENet weights laid out for the fused forward: split halves for the concatenating convolutions."""

    def __init__(self, net, device, dtype, channels_last):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.num_iterations = net.num_iterations
        self.w = {}
        for name in _CONV_NAMES:
            conv = getattr(net, name)
            w = conv.weight.detach().to(device=device, dtype=dtype)
            b = conv.bias.detach().to(device=device, dtype=dtype)
            if name in ('e_conv5', 'e_conv6', 'e_conv7'):
                half = w.shape[1] // 2
                # the concatenations are [x3, x4], [x2, x5], [x1, x6]: first half acts on the skip input
                self.w[name] = (w[:, :half].contiguous(memory_format=fmt), w[:, half:].contiguous(memory_format=fmt), b)
            else:
                self.w[name] = (w.contiguous(memory_format=fmt), b)


def _prepared(net, device, dtype, channels_last):
    key = (device, dtype, channels_last)
    versions = tuple((p._version, p.data_ptr()) for p in net.parameters())
    cache = _PREPARED.setdefault(net, {})
    entry = cache.get(key)
    if entry is None or entry[0] != versions:
        entry = (versions, _Weights(net, device, dtype, channels_last))
        cache[key] = entry
    return entry[1]


def _curves_mkldnn(p, x):
    conv, conv_add_ = _MKLDNN
    pad, one = [1, 1], [1, 1]
    w = p.w

    def conv_relu(inp, wb):
        return conv(inp, wb[0], wb[1], pad, one, one, 1, 'relu', [], '')

    def conv_cat(skip, inp, wb, unary):
        acc = conv(inp, wb[1], wb[2], pad, one, one, 1, 'none', [], '')
        # acc += conv(skip, first half), then the unary op, in place in oneDNN
        return conv_add_(acc, skip, wb[0], None, pad, one, one, 1, 'add', 1.0, unary, [], None)

    x1 = conv_relu(x, w['e_conv1'])
    x2 = conv_relu(x1, w['e_conv2'])
    x3 = conv_relu(x2, w['e_conv3'])
    x4 = conv_relu(x3, w['e_conv4'])
    x5 = conv_cat(x3, x4, w['e_conv5'], 'relu')
    del x3, x4
    x6 = conv_cat(x2, x5, w['e_conv6'], 'relu')
    del x2, x5
    return conv_cat(x1, x6, w['e_conv7'], None).tanh_()


def _curves_generic(p, x):
    w = p.w

    def conv_relu(inp, wb):
        return F.conv2d(inp, wb[0], wb[1], padding=1).relu_()

    def conv_cat(skip, inp, wb):
        return F.conv2d(inp, wb[1], wb[2], padding=1).add_(F.conv2d(skip, wb[0], None, padding=1))

    x1 = conv_relu(x, w['e_conv1'])
    x2 = conv_relu(x1, w['e_conv2'])
    x3 = conv_relu(x2, w['e_conv3'])
    x4 = conv_relu(x3, w['e_conv4'])
    x5 = conv_cat(x3, x4, w['e_conv5']).relu_()
    del x3, x4
    x6 = conv_cat(x2, x5, w['e_conv6']).relu_()
    del x2, x5
    return conv_cat(x1, x6, w['e_conv7']).tanh_()


def apply_curves_(x, curves, band_bytes=1 << 21):
    """In-place :func:`~sclle_basicsr.archs.dcenet_arch.apply_curves` (same arithmetic), in bands of rows.

    Each band of ``curves`` (about ``band_bytes``) stays in cache for all the iterations.
    """
    n_iter = curves.shape[1] // 3
    height, width = x.shape[-2:]
    rows = max(1, min(height, band_bytes // max(1, width * curves.shape[1] * curves.element_size())))
    tmp = torch.empty_like(x[:, :, :rows])
    for top in range(0, height, rows):
        xs = x[:, :, top:top + rows]
        cs = curves[:, :, top:top + rows]
        t = tmp[:, :, :xs.shape[2]]
        for i in range(n_iter):
            torch.mul(xs, xs, out=t)
            t.sub_(xs).mul_(cs[:, 3 * i:3 * i + 3])
            xs.add_(t)
    return x


def _check_precision(precision, device):
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {", ".join(PRECISIONS)}, got "{precision}"')
    if precision == 'fp16' and device.type != 'cuda':
        raise ValueError('precision "fp16" needs a CUDA device (CPU convolutions in fp16 are not supported); '
                         'use "bf16" or "fp32" on CPU')
    if precision == 'bf16' and device.type == 'cpu' and not native_bf16_supported() and not _check_precision.warned:
        _check_precision.warned = True
        warnings.warn('this CPU has no native bf16 (no AVX512-BF16/AMX): bf16 convolutions are emulated and much '
                      'slower than fp32; use precision="fp32" here', RuntimeWarning, stacklevel=3)


_check_precision.warned = False
_COMPILED = {}


def _compiled(fn):
    if fn not in _COMPILED:
        _COMPILED[fn] = torch.compile(fn, dynamic=True)
    return _COMPILED[fn]


def _forward_dcenet(net, x, precision, channels_last, compile):
    """Enhanced ``x`` (float32, same layout as given) for one tile or image."""
    device = x.device
    dtype = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]
    use_mkldnn = (_MKLDNN is not None and device.type == 'cpu' and not compile
                  and (dtype == torch.float32 or native_bf16_supported()))
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    p = _prepared(net, device, dtype, channels_last)
    inp = x.to(dtype=dtype, memory_format=fmt)
    if compile:
        curves = _compiled(_curves_generic)(p, inp)
    elif use_mkldnn:
        curves = _curves_mkldnn(p, inp)
    else:
        curves = _curves_generic(p, inp)
    del inp
    if curves.dtype != torch.float32:
        curves = curves.float()
    out = x.to(dtype=torch.float32, memory_format=fmt, copy=True)
    return apply_curves_(out, curves)


def _tile_ranges(size, tile, pad):
    for start in range(0, size, tile):
        end = min(start + tile, size)
        yield start, end, max(0, start - pad), min(size, end + pad)


def enhance_tensor(net, x, tile=0, tile_pad=8, precision='fp32', channels_last=None, compile=False,
                   flush_denormal=True):
    """Enhance ``x`` ((N, 3, H, W) float in [0, 1]) with a DCENet; returns a tensor of x's dtype and shape.

    Args:
        net: a :class:`DCENet` (or a wrapper with ``.module``); other modules are called as ``net(x)``.
        tile: tile side in pixels (0: whole image). Memory then scales with the tile, not the image.
        tile_pad: overlap added around each tile; ``>= 7`` (the receptive radius) gives the untiled result.
        precision: 'fp32'; 'bf16' (convolutions in bf16, curves applied in fp32); 'fp16' (CUDA only).
        channels_last: NHWC activations; default: on for CPU and CUDA.
        compile: run the split-weight forward through ``torch.compile`` (first call compiles; slow to start).
        flush_denormal: flush denormals during the call (the previous setting is restored after).
    """
    net = getattr(net, 'module', net)
    if not torch.is_tensor(x) or x.dim() != 4 or x.size(1) != 3 or not x.is_floating_point():
        desc = f'shape {tuple(x.shape)}, {x.dtype}' if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f'enhance_tensor expects an (N, 3, H, W) float tensor, got {desc}')
    if tile < 0 or tile_pad < 0:
        raise ValueError(f'tile ({tile}) and tile_pad ({tile_pad}) must be >= 0')
    device = x.device
    _check_precision(precision, device)
    if channels_last is None:
        channels_last = True
    if not isinstance(net, DCENet):  # a different arch: plain call, same precision handling
        with flush_denormals(flush_denormal and device.type == 'cpu'), torch.inference_mode():
            dtype = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[precision]
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                return net(x).to(x.dtype)

    with flush_denormals(flush_denormal and device.type == 'cpu'), torch.inference_mode():
        n, _, h, w = x.shape
        if not tile or (tile >= h and tile >= w):
            out = _forward_dcenet(net, x, precision, channels_last, compile)
            return out.to(dtype=x.dtype, memory_format=torch.contiguous_format)
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        for y0, y1, py0, py1 in _tile_ranges(h, tile, tile_pad):
            for x0, x1, px0, px1 in _tile_ranges(w, tile, tile_pad):
                res = _forward_dcenet(net, x[:, :, py0:py1, px0:px1], precision, channels_last, compile)
                out[:, :, y0:y1, x0:x1] = res[:, :, y0 - py0:y1 - py0, x0 - px0:x1 - px0]
                del res
        return out


def tile_peak_bytes(tile, tile_pad=8, num_features=32, num_iterations=8, bytes_per_el=4):
    """Rough peak activation memory of one tile (for choosing a tile size): about 4 live feature maps."""
    side = tile + 2 * tile_pad
    return side * side * bytes_per_el * (4 * num_features + 3 * num_iterations + 9)


def auto_tile(height, width, budget_bytes=512 << 20, tile_pad=8):
    """0 when the whole image fits ``budget_bytes`` of activations, else the largest multiple of 64 that does."""
    if tile_pad < 0:
        raise ValueError('tile_pad must be >= 0')
    need = height * width * 4 * (4 * 32 + 24 + 9)
    if need <= budget_bytes:
        return 0
    side = int(math.sqrt(budget_bytes / (4 * (4 * 32 + 24 + 9)))) - 2 * tile_pad
    return max(64, side // 64 * 64)


# ----------------------------------------------------------------------------------------------------------------
# Array API

LUMA_BT601 = (0.299, 0.587, 0.114)


class Enhancer:
    """Enhance images given as arrays or tensors; the result has the input's dtype and layout.

    ``Enhancer(model_path, device='auto', precision='fp32', tile=0).enhance(img)`` where ``img`` is

    * a NumPy array, uint8 / uint16 (full range) or float (in [0, 1]): ``HxWx3`` RGB, ``HxWx4`` RGBA (the alpha
      is returned untouched), ``HxW`` or ``HxWx1`` grayscale (replicated to RGB, enhanced, and converted back to
      one channel with the BT.601 luma weights 0.299 R + 0.587 G + 0.114 B, as PIL's ``convert('L')`` does);
    * a float tensor ``(N, 3, H, W)`` or ``(3, H, W)`` in [0, 1] (any device; moved to the enhancer's device and
      back).
    """

    def __init__(self, model_path=None, device='auto', precision='fp32', tile=0, tile_pad=8, net=None,
                 channels_last=None, compile=False):
        self.device = resolve_device(device)
        _check_precision(precision, self.device)
        if net is None:
            net = load_enhancer(model_path, self.device)
        self.net = net.to(self.device).eval()
        self.precision = precision
        self.tile = tile
        self.tile_pad = tile_pad
        self.channels_last = channels_last
        self.compile = compile

    def enhance_tensor(self, x):
        """``(N, 3, H, W)`` float tensor in [0, 1] -> enhanced tensor, same dtype and device."""
        y = enhance_tensor(self.net, x.to(self.device), tile=self.tile, tile_pad=self.tile_pad,
                           precision=self.precision, channels_last=self.channels_last, compile=self.compile)
        return y.to(x.device)

    def enhance(self, img):
        if torch.is_tensor(img):
            if not img.is_floating_point():
                raise ValueError(f'tensors must be float in [0, 1], got {img.dtype}')
            if img.dim() == 3 and img.size(0) == 3:
                return self.enhance_tensor(img.unsqueeze(0))[0]
            return self.enhance_tensor(img)
        import numpy as np

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
