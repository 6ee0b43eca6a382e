"""Shared fixtures: the repository root and shared assets (skipped with a reason when absent)."""
import os.path as osp

import pytest

import sclle_basicsr  # noqa: F401  (compat fixes and registration before any test imports basicsr)
from sclle_basicsr.assets import ENV_VAR, REPO_ROOT, asset_path


def require_asset(*parts):
    """Path of an asset, or skip the test saying where it was looked for."""
    path = asset_path(*parts)
    if not osp.exists(path):
        pytest.skip(f'asset {path} not found (set {ENV_VAR} to the shared assets folder)')
    return path


@pytest.fixture
def repo_root():
    return REPO_ROOT
