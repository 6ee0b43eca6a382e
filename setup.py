"""Shim for BasicSR's convention, ``python setup.py develop``: everything is declared in ``pyproject.toml``."""
from setuptools import setup

setup()
