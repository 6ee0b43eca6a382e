"""Images a metric cannot score are named and left out of that metric's mean instead of ending an evaluation.

BasicSR's NIQE scores 96x96 blocks: an image with a side under 96 pixels has none, and NIQE raises (a
``RuntimeError`` from an empty tensor, or, for a side of one pixel, an ``AssertionError``), so such images are
refused by size before NIQE runs (:func:`size_problem`); flat images make it raise ``LinAlgError: SVD did not
converge``.  SSIM of an image under 11x11 pixels is NaN.  Anything else a metric raises (a wrong option, a missing
key) is a configuration error and still ends the run.
"""
import math

import numpy as np

UNSCORABLE_ERRORS = (np.linalg.LinAlgError, RuntimeError, ValueError, ZeroDivisionError, FloatingPointError)
MIN_SIDE = {'calculate_niqe': 96}  # BasicSR's NIQE block: a smaller image has no block to score


def size_problem(metric_opt, shape):
    """Why a metric (BasicSR options ``{type, crop_border, ...}``) cannot score an image of ``shape`` (H, W, ...),
    or ``None``."""
    side = MIN_SIDE.get(metric_opt.get('type'))
    if side is None:
        return None
    crop = int(metric_opt.get('crop_border', 0) or 0)
    h, w = shape[0] - 2 * crop, shape[1] - 2 * crop
    if h >= side and w >= side:
        return None
    inside = f' inside crop_border {crop}' if crop else ''
    return f'the image is {max(w, 0)}x{max(h, 0)} pixels{inside}, under the {side}x{side} it needs'


def score_or_none(metric, compute, image, warn, problem=None):
    """``compute()`` as a float, or ``None`` after ``warn(message)`` naming ``image``, ``metric`` and the reason;
    ``problem`` (e.g. from :func:`size_problem`): a reason known beforehand, then ``compute`` is not called."""
    if problem:
        warn(f'{metric} cannot score {image}: {problem}; left out of the {metric} mean.')
        return None
    try:
        value = float(compute())
        if math.isnan(value):
            raise ValueError('the metric returned NaN')
    except UNSCORABLE_ERRORS as err:
        warn(f'{metric} cannot score {image}: {type(err).__name__}: {err}; left out of the {metric} mean.')
        return None
    return value


def mean_or_nan(values):
    return float(np.mean(values)) if values else float('nan')
