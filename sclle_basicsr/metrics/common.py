"""What the plugin's metrics share: their errors, which metrics are lower-is-better, the image check, and the data a
model hands a metric that compares the output with its low-light input."""
import inspect

import numpy as np
from basicsr.utils.registry import METRIC_REGISTRY

# BasicSR keeps the highest value of a metric as "Best" (and for save-best choices) unless the metric's options say
# ``better: lower``; these metrics are lower-is-better, so every option file must say it for them.
LOWER_IS_BETTER = ('calculate_niqe', 'calculate_loe')
# The data key under which a metric receives the low-light input (a parameter of that name asks for it).
INPUT_KEY = 'lq'


class MetricOptionError(TypeError):
    """A metric option or call that cannot be right (as Python's TypeError for a wrong keyword): it ends the run
    instead of leaving every image out of the mean one by one."""


class MetricWeightsError(OSError):
    """The weights of a learned metric are missing or unusable: a set-up error, raised at the first image, that ends
    the validation (it is not one of :data:`sclle_basicsr.metrics.unscorable.UNSCORABLE_ERRORS`, which leave one
    image out)."""


def missing_better_lower(metrics):
    """Names of the lower-is-better metrics of a ``val.metrics`` mapping whose options lack ``better: lower``."""
    return [name for name, opt in (metrics or {}).items()
            if isinstance(opt, dict) and opt.get('type') in LOWER_IS_BETTER and opt.get('better') != 'lower']


def check_better(metric, better, expected):
    """Refuse a ``better`` option that would make BasicSR keep the worst value as "Best"."""
    if better != expected:
        raise MetricOptionError(f'{metric}: better must be {expected!r} ({metric} is {expected}-is-better), got '
                                f'{better!r}')


def takes_input(metric_type):
    """Whether the registered metric ``metric_type`` compares with the low-light input (has an ``lq`` parameter)."""
    if metric_type not in METRIC_REGISTRY:
        return False  # BasicSR's calculate_metric names the unknown type itself
    return INPUT_KEY in inspect.signature(METRIC_REGISTRY.get(metric_type)).parameters


def metric_inputs(data, metric_opt, lq):
    """The data BasicSR's ``calculate_metric`` passes one metric: ``data`` (``img``, and ``img2`` when there is a
    ground truth), plus the low-light input ``lq`` ((1, 3, H, W) in [0, 1], as BasicSR's 8-bit BGR image) for a
    metric that takes it. Other metrics get ``data`` unchanged, so a metric without ``**kwargs`` still works."""
    if not takes_input(metric_opt.get('type')):
        return data
    from basicsr.utils import tensor2img
    return dict(data, **{INPUT_KEY: tensor2img([lq.detach().cpu()])})


def color_image(img, input_order, metric):
    """``img`` (BasicSR's metric input: 8-bit BGR, values in [0, 255], ``HWC`` or ``CHW``) as ``HxWx3`` uint8 BGR.

    A gray image (``HxW`` or one channel) is replicated to three channels; any other channel count, non-finite or
    out-of-range values are a ``ValueError`` (the image is named and left out of the mean by the caller).
    """
    img = np.asarray(img)
    if input_order not in ('HWC', 'CHW'):
        raise MetricOptionError(f"{metric}: input_order must be 'HWC' or 'CHW', got {input_order!r}")
    if img.ndim == 3 and input_order == 'CHW':
        img = img.transpose(1, 2, 0)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f'{metric} needs a 3-channel (BGR) or gray image, got an array of shape {img.shape}')
    if img.dtype != np.uint8:
        if not np.issubdtype(img.dtype, np.number) or not np.isfinite(img).all():
            raise ValueError(f'{metric} needs finite pixel values in [0, 255]')
        low, high = float(img.min()), float(img.max())
        if low < 0 or high > 255:
            raise ValueError(f'{metric} needs pixel values in [0, 255] (8-bit images), got {low:.4g} to {high:.4g}')
        img = np.round(img).astype(np.uint8)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img)
