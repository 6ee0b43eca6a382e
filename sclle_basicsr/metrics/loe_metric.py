"""LOE, the lightness order error (Wang et al., "Naturalness preserved enhancement algorithm for non-uniform
illumination images", TIP 2013), as a BasicSR metric: how much an enhancement changes the order of lightness
between the pixels of its input.

Lightness is the maximum over R, G and B. For each pixel x, RD(x) counts the pixels y whose order relation with x
(L(x) >= L(y), or not) differs between the input and the output; LOE is the mean of RD over the pixels, so it lies
between 0 (every order kept) and the number of pixels compared. As in the definition, both lightness maps are first
down-sampled, here so that the shorter side is ``short_side`` pixels: 50 by default, the ratio r = 50 / min(m, n) of
the commonly used implementation of the definition; some papers use 100, which raises every value about fourfold, so
compare values at one setting only. Down-sampling averages over areas (OpenCV's ``INTER_AREA``, an anti-aliased
shrink like MATLAB's ``imresize``), so LOE compares the order of local lightness rather than of single noisy pixels
(an average does not commute with a non-linear curve, so a gamma curve scores slightly above 0; a gain scores 0).
The work is quadratic in the pixels compared: about 3,400 at the default for a 4:3 image, milliseconds.

The output is compared with the model's low-light input: :class:`~sclle_basicsr.models.sclle_model.SCLLLEModel`
passes it to any metric with an ``lq`` parameter (:func:`~sclle_basicsr.metrics.common.metric_inputs`).
Lower is better, so its options need ``better: lower``::

    val:
      metrics:
        loe: {type: calculate_loe, better: lower}
"""
import cv2
import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

from sclle_basicsr.metrics.common import MetricOptionError, check_better, color_image

DEFAULT_SHORT_SIDE = 50
# pairs compared per step of the quadratic count: bounds the temporary boolean arrays to about 16 MB
_PAIRS_PER_STEP = 1 << 24
# the count is quadratic: 100,000 pixels are 10^10 pairs, tens of seconds (the default compares about 3,400)
MAX_COMPARED = 100_000


def lightness(bgr):
    """``max(R, G, B)`` of an ``HxWx3`` image, as float32 (pairwise maxima: ``max(axis=2)`` over the interleaved
    channels is some 40 times slower)."""
    return np.maximum(np.maximum(bgr[..., 0], bgr[..., 1]), bgr[..., 2]).astype(np.float32)


def downsampled_size(height, width, short_side=DEFAULT_SHORT_SIDE):
    """``(height, width)`` with the shorter side ``short_side`` (aspect kept, rounded); an image already that small is
    kept as it is."""
    ratio = short_side / min(height, width)
    if ratio >= 1:
        return height, width
    return max(1, round(height * ratio)), max(1, round(width * ratio))


def lightness_order_error(lightness_in, lightness_out):
    """Mean over the pixels x of the number of pixels y with ``[L(x) >= L(y)] != [Le(x) >= Le(y)]``."""
    a, b = np.ravel(lightness_in), np.ravel(lightness_out)
    if a.shape != b.shape:
        raise ValueError(f'lightness maps of {a.size} and {b.size} pixels cannot be compared')
    n = a.size
    step = max(1, _PAIRS_PER_STEP // n)
    differing = 0
    for start in range(0, n, step):
        differing += np.count_nonzero((a[start:start + step, None] >= a) != (b[start:start + step, None] >= b))
    return differing / n


@METRIC_REGISTRY.register()
def calculate_loe(img, lq=None, short_side=DEFAULT_SHORT_SIDE, input_order='HWC', better='lower', img2=None):
    """LOE of the enhanced ``img`` against the low-light input ``lq`` (BasicSR metric images: 8-bit BGR, ``HWC``).

    An output of another size than the input (a network that rescales) is compared at the input's down-sampled size
    when both have the same aspect ratio; anything else is a ``ValueError`` naming the sizes. ``img2`` (the ground
    truth, where the dataset has one) is not used.
    """
    check_better('calculate_loe', better, 'lower')
    if lq is None:
        raise MetricOptionError('calculate_loe compares the output with the low-light input (data key "lq"), which '
                                'this model does not pass: use SCLLLEModel, or a model that adds lq to the metric data')
    if not isinstance(short_side, int) or isinstance(short_side, bool) or short_side < 2:
        raise MetricOptionError(f'calculate_loe: short_side must be an integer >= 2, got {short_side!r}')
    out, src = color_image(img, input_order, 'calculate_loe'), color_image(lq, input_order, 'calculate_loe')
    (h, w), (oh, ow) = src.shape[:2], out.shape[:2]
    if abs(oh * w - h * ow) > max(h, w, oh, ow):  # aspect ratios more than about a pixel apart
        raise ValueError(f'calculate_loe compares the output with its input pixel for pixel: the output is '
                         f'{ow}x{oh}, the input {w}x{h} (not the same aspect ratio)')
    dh, dw = downsampled_size(h, w, short_side)
    if dh * dw > MAX_COMPARED:
        raise ValueError(f'calculate_loe would compare {dh}x{dw} pixels, pairwise (at most {MAX_COMPARED:,}): '
                         f'the image is too elongated for short_side {short_side}')
    maps = []
    for image in (src, out):
        lit = lightness(image)
        if lit.shape != (dh, dw):
            lit = cv2.resize(lit, (dw, dh), interpolation=cv2.INTER_AREA)
        maps.append(lit)
    return lightness_order_error(*maps)
