"""Metrics the plugin adds to BasicSR's ``METRIC_REGISTRY`` (importing this package registers them),
usable by name in ``val.metrics`` of any option file:

* ``calculate_unique`` (:mod:`.unique_metric`): UNIQUE, the learned no-reference score of the paper's Tables 1 and 3
  (higher is better; its weights are a file you provide);
* ``calculate_loe`` (:mod:`.loe_metric`): the lightness order error against the low-light input (lower is better).

:mod:`.common` holds what they share: which metrics are lower-is-better (:data:`LOWER_IS_BETTER`, whose options need
``better: lower``), the errors that end a run, and :func:`metric_inputs`, through which a model hands the low-light
input to a metric that asks for it.
"""
from sclle_basicsr.metrics.common import (
    INPUT_KEY,
    LOWER_IS_BETTER,
    MetricOptionError,
    MetricWeightsError,
    metric_inputs,
    missing_better_lower,
    takes_input,
)
from sclle_basicsr.metrics.loe_metric import calculate_loe
from sclle_basicsr.metrics.unique_metric import calculate_unique, find_unique_weights, load_unique

__all__ = [
    'INPUT_KEY', 'LOWER_IS_BETTER', 'MetricOptionError', 'MetricWeightsError', 'calculate_loe', 'calculate_unique',
    'find_unique_weights', 'load_unique', 'metric_inputs', 'missing_better_lower', 'takes_input'
]
