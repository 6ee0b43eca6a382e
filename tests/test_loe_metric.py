"""LOE, the lightness order error (sclle_basicsr.metrics.loe_metric), on cases with known answers."""
import cv2
import numpy as np
import pytest
from basicsr.metrics import calculate_metric

from sclle_basicsr.metrics import MetricOptionError, calculate_loe
from sclle_basicsr.metrics.loe_metric import downsampled_size, lightness_order_error

LOE = {'type': 'calculate_loe', 'better': 'lower'}


def textured(h, w, seed=0, high=120):
    """A colour image with smooth structure and noise, values up to about 1.3 * high."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.25 * np.sin(xx / 9.0) * np.cos(yy / 13.0) + 0.2 * xx / w
    img = base[..., None] * np.array([0.7, 0.9, 1.0]) + rng.normal(0, 0.05, (h, w, 3))
    return np.clip(np.round(img * high), 0, 255).astype(np.uint8)


def test_hand_computed_pairs():
    # lightness 10, 20, 30, 40 -> 10, 30, 20, 40: the middle two swap, each disagrees with the other only
    assert lightness_order_error(np.array([10., 20., 30., 40.]), np.array([10., 30., 20., 40.])) == 0.5
    # a tie broken counts for the pixel that is no longer >= the other: [a >= b] was True both ways
    assert lightness_order_error(np.array([5., 5.]), np.array([5., 6.])) == 0.5


def test_identity_is_zero():
    img = textured(300, 400)
    assert calculate_loe(img, lq=img) == 0
    assert calculate_metric({'img': img, 'lq': img}, LOE) == 0


def test_monotone_brightening_is_zero():
    low = textured(300, 400, high=100)
    doubled = low.astype(np.uint16) * 2  # a gain: commutes with the area average of the down-sampling
    assert doubled.max() <= 255
    assert calculate_loe(doubled.astype(np.uint8), lq=low) == 0
    # below the down-sampled size nothing is averaged: any increasing curve keeps every order
    small = textured(40, 48, high=90)
    x = np.arange(256)
    curve = np.round(x + 0.8 * x * (1 - x / 255)).astype(np.uint8)  # a Zero-DCE light-enhancement curve
    assert (np.diff(curve[:small.max() + 1].astype(int)) > 0).all()  # strictly increasing on the values used
    assert calculate_loe(curve[small], lq=small) == 0
    # on a large image the averages of a non-linear curve keep nearly every order (exactly 0 only for a gain)
    bright = curve[low]
    assert calculate_loe(bright, lq=low) < 0.01 * np.prod(downsampled_size(300, 400))


def test_order_reversing_map_is_large():
    gray = textured(40, 48, high=250)[:, :, 1]
    low = np.repeat(gray[..., None], 3, axis=2)
    value = calculate_loe(255 - low, lq=low)
    # every pair of different lightness flips; pairs of equal lightness stay tied (>= holds both ways before and after)
    _, counts = np.unique(gray, return_counts=True)
    n = gray.size
    assert value == pytest.approx(n - (counts.astype(float) ** 2).sum() / n)
    assert value > 0.9 * n


def test_down_sampling_to_fifty_pixels_on_the_short_side():
    assert downsampled_size(1728, 2304) == (50, 67)  # a 4 MP VV image
    assert downsampled_size(2304, 1728) == (67, 50)
    assert downsampled_size(40, 48) == (40, 48)  # not enlarged
    assert downsampled_size(1728, 2304, short_side=100) == (100, 133)
    img = textured(300, 400)
    reversed_ = 255 - img
    # at most one pair count per compared pixel: the bound grows with the down-sampled size
    assert calculate_loe(reversed_, lq=img) < 50 * 67
    assert calculate_loe(reversed_, lq=img, short_side=100) > calculate_loe(reversed_, lq=img)


def test_gray_and_rescaled_outputs_and_refusals():
    low = textured(40, 48)
    gray = low[:, :, 0]
    assert calculate_loe(gray, lq=np.repeat(gray[..., None], 3, axis=2)) == 0  # gray replicated
    twice = cv2.resize(low, (96, 80), interpolation=cv2.INTER_NEAREST)  # a x2 network keeping every pixel
    assert calculate_loe(twice, lq=low) == 0
    assert calculate_loe(low.transpose(2, 0, 1), lq=low.transpose(2, 0, 1), input_order='CHW') == 0
    with pytest.raises(ValueError, match='not the same aspect ratio'):
        calculate_loe(np.zeros((40, 96, 3), np.uint8), lq=low)
    with pytest.raises(ValueError, match='3-channel'):
        calculate_loe(np.zeros((40, 48, 4), np.uint8), lq=low)
    with pytest.raises(ValueError, match='too elongated'):  # the pairwise count would take minutes
        calculate_loe(np.zeros((50, 2100, 3), np.uint8), lq=np.zeros((50, 2100, 3), np.uint8))
    with pytest.raises(ValueError, match=r'\[0, 255\]'):
        calculate_loe(low * 3.0, lq=low)


def test_configuration_errors_end_the_run():
    """Raised as MetricOptionError (a TypeError), which the validation does not take for an unscorable image."""
    from sclle_basicsr.metrics.unscorable import UNSCORABLE_ERRORS
    assert not issubclass(MetricOptionError, UNSCORABLE_ERRORS)
    img = textured(40, 48)
    with pytest.raises(MetricOptionError, match='low-light input'):
        calculate_metric({'img': img, 'img2': img}, LOE)  # a model that passes no lq (BasicSR's SRModel)
    with pytest.raises(MetricOptionError, match="better must be 'lower'"):
        calculate_loe(img, lq=img, better='higher')
    with pytest.raises(MetricOptionError, match='short_side'):
        calculate_loe(img, lq=img, short_side=0)
