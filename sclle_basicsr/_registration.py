"""Importing a module is what registers its classes in BasicSR's registries (BasicSR-examples convention)."""
import importlib
from os import path as osp

from basicsr.utils import scandir


def import_submodules(package, package_file, suffix):
    """Import every ``*<suffix>.py`` beside ``package_file`` as a submodule of ``package``; return the modules."""
    folder = osp.dirname(osp.abspath(package_file))
    names = sorted(osp.splitext(f)[0] for f in scandir(folder) if f.endswith(f'{suffix}.py'))
    return [importlib.import_module(f'{package}.{name}') for name in names]
