"""Checkpoint I/O and weight checks: the package's one checkpoint reader and state-dict unwrapper, at the bottom of
the package (networks, losses, inference and the runners all read weights through it; it imports only torch)."""
import os.path as osp
import re

import torch

# BasicSR checkpoints hold ``params_ema`` and/or ``params`` (EMA weights preferred); mmengine / mmseg and plain
# training scripts use ``state_dict`` or ``model``.
STATE_DICT_KEYS = ('params_ema', 'params', 'state_dict', 'model')


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (the message names the file and what is wrong)."""


def read_checkpoint(path):
    """The object saved in ``path``, read onto the CPU with ``weights_only`` (tensors and containers, no code)."""
    if not osp.isfile(path):
        raise CheckpointError(f'model file {path} not found')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # pickle, zip, unsupported type: all mean "not a checkpoint"
        raise CheckpointError(f'{path}: cannot be read as a PyTorch checkpoint ({err})') from err


def unwrap_state_dict(obj, path, keys=STATE_DICT_KEYS):
    """``(state_dict, key)`` of a loaded checkpoint: the first of ``keys`` present (``key``), else ``obj`` itself as
    a bare state dict (``key`` None). A ``module.`` prefix on every name (DataParallel / DDP) is removed.

    ``keys`` defaults to :data:`STATE_DICT_KEYS`; BasicSR's ``param_key_g: K`` reads as ``keys=(K, 'params')``, and
    ``param_key_g: ~`` as ``keys=()``."""
    if not isinstance(obj, dict):
        raise CheckpointError(f'{path}: expected a state dict or a checkpoint dict, got {type(obj).__name__}')
    state, source = obj, None
    for key in keys:
        if key in obj:
            state, source = obj[key], key
            if not isinstance(state, dict):
                raise CheckpointError(f'{path}: entry "{key}" is a {type(state).__name__}, not a state dict')
            break
    if state and all(isinstance(k, str) and k.startswith('module.') for k in state):
        state = {k[len('module.'):]: v for k, v in state.items()}
    return state, source


def read_features_state_dict(path):
    """The ``features`` part of a torchvision AlexNet / VGG checkpoint in ``path``, under bare indices (``'0.weight'``).

    Accepts the full model's state dict (``features.*`` taken, ``classifier.*`` ignored) or its ``features`` module's
    own (``N.*`` keys), bare or in a checkpoint dict (see :func:`unwrap_state_dict`): the pretrained backbones of the
    VGG losses and of LPIPS come in both forms."""
    state, _ = unwrap_state_dict(read_checkpoint(path), path)
    if any(k.startswith('features.') for k in state):
        return {k[len('features.'):]: v for k, v in state.items() if k.startswith('features.')}
    return {k: v for k, v in state.items() if re.match(r'\d+\.', k)}


class InvalidWeightsError(ValueError):
    """A network with NaN or Inf weights: its images would be black or NaN (runtimes may even hide the NaN)."""


def check_weights(named_tensors):
    """Refuse non-finite floating-point tensors, naming them."""
    named_tensors = [(k, v) for k, v in named_tensors if v.is_floating_point()]
    if not named_tensors or bool(torch.stack([torch.isfinite(v).all() for _, v in named_tensors]).all()):
        return
    bad = [f'{k} ({int((~torch.isfinite(v)).sum())} of {v.numel()} values)' for k, v in named_tensors
           if not bool(torch.isfinite(v).all())]
    raise InvalidWeightsError('non-finite weights (NaN or Inf) in ' + ', '.join(bad))
