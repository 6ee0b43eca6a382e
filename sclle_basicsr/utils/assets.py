"""Where the shared data and weights live: ``$SCLLE_ASSETS``, else ``<repository>/../shared/assets``.

Tests, benchmarks and the demo reach assets only through here, and skip or fail with this path in the message.
"""
import os
import os.path as osp

REPO_ROOT = osp.abspath(osp.join(osp.dirname(__file__), osp.pardir, osp.pardir))
ENV_VAR = 'SCLLE_ASSETS'


def assets_root():
    return os.environ.get(ENV_VAR) or osp.join(REPO_ROOT, osp.pardir, 'shared', 'assets')


def asset_path(*parts):
    """Absolute path of an asset (it may not exist: callers check and say which variable sets the root)."""
    return osp.abspath(osp.join(assets_root(), *parts))
