"""Images a metric cannot score are named and left out of that metric's mean instead of ending an evaluation.

BasicSR's NIQE raises on images under 96x96 pixels (``RuntimeError`` from an empty tensor) and on flat ones
(``LinAlgError: SVD did not converge``); SSIM of an image under 11x11 pixels is NaN.  Anything else a metric raises
(a wrong option, a missing key) is a configuration error and still ends the run.
"""
import math

import numpy as np

UNSCORABLE_ERRORS = (np.linalg.LinAlgError, RuntimeError, ValueError, ZeroDivisionError, FloatingPointError)


def score_or_none(metric, compute, image, warn):
    """``compute()`` as a float, or ``None`` after ``warn(message)`` naming ``image``, ``metric`` and the reason."""
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
