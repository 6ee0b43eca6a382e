"""Choosing the tile from a memory budget, so that an image of any size fits the memory there is.

An untiled DCE-Net pass holds about 1.1 kB per pixel in fp32 (its activations), 26 GiB for a 24 MP photo; tiles
with an overlap of the receptive radius give the same pixels (:mod:`.tiling`), so the whole image is enhanced at
once when it fits the budget and in the largest tiles that fit otherwise.

The budget is, by default, a share of the memory free now: :data:`CUDA_SHARE` of the GPU's free memory (plus what
PyTorch's allocator holds unused), :data:`CPU_SHARE` of the RAM available (``MemAvailable``) on a CPU.  Memory
needed = :data:`FIXED_BYTES` + pixels x :data:`IO_BYTES_PER_PIXEL` (input and output, which tiling keeps whole) +
pixels of a pass x :data:`BYTES_PER_PIXEL` (a tile's pixels with its overlap, or the image's).
"""
import math
import os
import re

import torch

from sclle_basicsr.inference.tiling import smallest_useful_tile

CPU_SHARE = 0.5  # of MemAvailable: other programs and the page cache keep the rest
CUDA_SHARE = 0.8  # of free GPU memory: cuDNN workspaces and allocator fragmentation take some

# Working memory of one untiled pass per pixel, measured with ``scripts/benchmark_memory.py`` (fresh process per
# size, 1 and 2 MP, slope of peak RSS) on the 2-core Intel Xeon (AVX-512, AMX-BF16): torch fp32 1132, torch bf16
# 580, ONNX Runtime fp32 825, OpenVINO fp32 1108, OpenVINO bf16 628.  CUDA (the torch backend) is not measured
# here: the CPU torch figures stand in (fp16 activations are as wide as bf16's), and ``make gpu-check`` reports
# the measured ones.
BYTES_PER_PIXEL = {
    ('cpu', 'torch', 'fp32'): 1132,
    ('cpu', 'torch', 'bf16'): 580,
    ('cpu', 'onnxruntime', 'fp32'): 825,
    ('cpu', 'openvino', 'fp32'): 1108,
    ('cpu', 'openvino', 'bf16'): 628,
    ('cuda', 'torch', 'fp32'): 1132,
    ('cuda', 'torch', 'bf16'): 580,
    ('cuda', 'torch', 'fp16'): 580,
}
# Per image pixel whatever the tiling: the float input and the output (measured 15-27 with the output alone),
# and the conversions of Enhancer.enhance around them.
IO_BYTES_PER_PIXEL = 40
# Whatever the size: the runtimes' arenas (30-61 MiB measured), cuDNN's workspace on CUDA (not measured here).
FIXED_BYTES = {'cpu': 64 * 2**20, 'cuda': 256 * 2**20}

_UNITS = {'': 1, 'k': 2**10, 'm': 2**20, 'g': 2**30, 't': 2**40}


class MemoryBudgetError(ValueError):
    """A budget too small for the smallest useful tile, or a budget that cannot be read."""


def parse_memory_size(text):
    """Bytes of ``'512MiB'``, ``'4G'``, ``'1.5GiB'`` or ``'3000000000'`` (binary units: K, M, G, T, with or without
    ``iB`` / ``B``)."""
    match = re.fullmatch(r'\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*', str(text), re.IGNORECASE)
    if not match or (match.group(3) and match.group(3).lower() == 'ib' and not match.group(2)):
        raise MemoryBudgetError(f'memory budget {text!r}: give a size such as 512MiB, 4GiB or 3000000000 (bytes)')
    size = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if size <= 0:
        raise MemoryBudgetError(f'memory budget {text!r} must be positive')
    return int(size)


def format_bytes(size):
    return f'{size / 2**30:.2f} GiB' if size >= 2**30 else f'{size / 2**20:.0f} MiB'


def available_ram():
    """Bytes of RAM available to a new allocation without swapping (``MemAvailable``), else the free pages."""
    try:
        with open('/proc/meminfo') as f:
            for line in f:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf('SC_AVPHYS_PAGES') * os.sysconf('SC_PAGE_SIZE')


def default_budget(device):
    """The share of the memory free now on ``device`` that one image may take."""
    if device.type == 'cuda':
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(CUDA_SHARE * (free + cached))
    return int(CPU_SHARE * available_ram())


def bytes_per_pixel(device, backend, precision):
    return BYTES_PER_PIXEL.get((device.type, backend, precision), BYTES_PER_PIXEL[('cpu', 'torch', 'fp32')])


def tile_for_budget(shape, device, backend, precision, tile_pad, budget=None):
    """The tile for an ``(N, C, H, W)`` image: 0 (whole image) when it fits ``budget`` bytes (default:
    :func:`default_budget`), else the largest multiple of 8 whose padded tiles fit; :class:`MemoryBudgetError` when
    not even the smallest useful tile fits."""
    n, _, height, width = shape
    budget = default_budget(device) if budget is None else budget
    per_pixel = n * bytes_per_pixel(device, backend, precision)
    kept = FIXED_BYTES[device.type] + n * height * width * IO_BYTES_PER_PIXEL
    if kept + height * width * per_pixel <= budget:
        return 0
    side = math.isqrt(max(0, budget - kept) // per_pixel) - 2 * tile_pad
    tile = side // 8 * 8
    smallest = smallest_useful_tile(tile_pad)
    if tile < smallest:
        needs = kept + (smallest + 2 * tile_pad)**2 * per_pixel
        raise MemoryBudgetError(
            f'a memory budget of {format_bytes(budget)} is too small for a {width}x{height} image on {device.type}: '
            f'tiles of {smallest} pixels need {format_bytes(needs)}; give a larger budget or a --tile')
    return tile
