"""Tiled inference: memory scales with the tile, not the image.

DCENet's 7 stacked 3x3 convolutions give it a 15x15 receptive field, so a tile grown by ``tile_pad >= 7`` pixels on
each side (at the image border, where the zero padding then matches, shifted inwards instead) reproduces the untiled
output, up to float summation order.
"""
import numpy as np
import torch

TILE_PAD = 8  # DCENet's receptive radius (7) plus one: tiled output equals the untiled one
MIN_TILE = 64  # below this, overlap and per-tile overhead dominate (see smallest_useful_tile)


def smallest_useful_tile(tile_pad):
    """The smallest tile worth running: each tile is computed with ``tile_pad`` pixels of overlap on every side, so
    smaller tiles spend most of their time on the overlap (and the per-tile overhead) instead of the image."""
    return max(MIN_TILE, 2 * tile_pad + 1)


def tile_ranges(size, tile, pad):
    """``(start, end, padded_start, padded_end)`` of each tile along one axis of length ``size``.

    The tiles are as equal as the fewest tiles of at most ``tile`` pixels allow, and every padded window has the
    same length (``min(size, step + 2 * pad)``, shifted inwards at the borders): a runtime compiled per input shape
    (the OpenVINO backend) then compiles one shape per image instead of up to nine, for at most ``2 * pad`` plus one
    per tile more pixels along the axis (0.5-1 % at 4 and 12 MP in 384-pixel tiles).
    """
    step = -(-size // -(-size // tile))  # ceil(size / the fewest tiles)
    length = min(size, step + 2 * pad)
    for start in range(0, size, step):
        padded_start = min(max(0, start - pad), size - length)
        yield start, min(start + step, size), padded_start, padded_start + length


def run_tiled(fn, x, tile, tile_pad):
    """``fn(x)`` for an ``(N, C, H, W)`` tensor or NumPy array, computed tile by tile when ``tile`` is set and smaller
    than x; ``fn`` gets contiguous tiles of x's type and returns the same type."""
    _, _, height, width = x.shape
    contiguous = (lambda a: a.contiguous()) if torch.is_tensor(x) else np.ascontiguousarray
    if not tile or (tile >= height and tile >= width):
        return fn(contiguous(x))
    out = torch.empty_like(x, memory_format=torch.contiguous_format) if torch.is_tensor(x) else np.empty_like(x)
    for y0, y1, py0, py1 in tile_ranges(height, tile, tile_pad):
        for x0, x1, px0, px1 in tile_ranges(width, tile, tile_pad):
            res = fn(contiguous(x[:, :, py0:py1, px0:px1]))
            out[:, :, y0:y1, x0:x1] = res[:, :, y0 - py0:y1 - py0, x0 - px0:x1 - px0]
    return out
