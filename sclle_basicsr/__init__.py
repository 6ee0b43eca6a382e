"""SCL-LLE (Liang et al., AAAI 2022) as a BasicSR plugin.

Importing it registers the archs, datasets, losses, metrics and models in BasicSR's registries and changes nothing
else in BasicSR (``_compat`` only makes ``import basicsr`` work).  The fixes to BasicSR's runners are applied by
:func:`prepare_basicsr_runner`, which ``sclle_basicsr/train.py`` and ``test.py`` call.
"""
# flake8: noqa
from sclle_basicsr import _compat  # isort: skip
from sclle_basicsr import archs, data, losses, metrics, models
from sclle_basicsr.runner.basicsr_runner import prepare_basicsr_runner
from sclle_basicsr.inference import Enhancer
from sclle_basicsr.version import __version__
