"""SCL-LLE (Liang et al., AAAI 2022) as a BasicSR plugin.

``_compat`` runs first: it fixes the pinned stack before BasicSR or mmseg is imported.  Importing the
sub-packages registers the archs, datasets, losses and models in BasicSR's registries.
"""
# flake8: noqa
from sclle_basicsr import _compat  # isort: skip
from sclle_basicsr import archs, data, losses, models
from sclle_basicsr.inference import Enhancer
from sclle_basicsr.version import __version__
