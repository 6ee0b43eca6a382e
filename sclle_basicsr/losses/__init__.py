"""Importing this package registers every ``*_loss.py`` in it with BasicSR."""
from sclle_basicsr._registration import import_submodules

_modules = import_submodules(__name__, __file__, '_loss')
