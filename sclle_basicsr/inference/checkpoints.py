"""Reading checkpoints: the package's one checkpoint reader and state-dict unwrapper, and the validated DCENet reader
built on them."""
import os.path as osp
import re

import torch

from sclle_basicsr.inference.backends import InvalidWeightsError, check_weights, resolve_device

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


def read_dcenet_state_dict(model_path):
    """``(state_dict, source_key, num_iterations, num_features)`` from a checkpoint file, validated.

    The width and number of curve iterations are read from the weights. Names, shapes and values (every tensor
    finite: NaN or Inf weights give black or NaN images) are checked; errors name the file and the tensor.
    """
    from sclle_basicsr.archs.dcenet_arch import DCENet  # here, not at the top: archs import this module

    if model_path is None:
        raise CheckpointError('no model path given')
    sd, source = unwrap_state_dict(read_checkpoint(model_path), model_path)
    where = f'{model_path}' + (f' ["{source}"]' if source else '')
    for name in ('e_conv1.weight', 'e_conv7.weight'):
        if name not in sd or not torch.is_tensor(sd[name]) or sd[name].dim() != 4:
            keys = ', '.join(list(sd)[:8]) + (' ...' if len(sd) > 8 else '')
            raise CheckpointError(f'{where}: not a DCENet state dict (missing or malformed "{name}"; '
                                  f'keys: {keys or "none"})')
    num_features = sd['e_conv1.weight'].shape[0]
    out7 = sd['e_conv7.weight'].shape[0]
    if out7 % 3:
        raise CheckpointError(f'{where}: e_conv7 has {out7} output channels, not a multiple of 3')
    num_iterations = out7 // 3
    reference = DCENet(num_iterations=num_iterations, num_features=num_features).state_dict()
    missing = [k for k in reference if k not in sd]
    unexpected = [k for k in sd if k not in reference]
    bad_shapes = [f'{k}: {tuple(sd[k].shape)} in file, {tuple(v.shape)} expected' for k, v in reference.items()
                  if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if missing or unexpected or bad_shapes:
        parts = []
        if missing:
            parts.append('missing keys: ' + ', '.join(missing))
        if unexpected:
            parts.append('unexpected keys: ' + ', '.join(unexpected))
        if bad_shapes:
            parts.append('shape mismatch: ' + '; '.join(bad_shapes))
        raise CheckpointError(f'{where}: does not match DCENet(num_iterations={num_iterations}, '
                              f'num_features={num_features}): ' + ' | '.join(parts))
    try:
        check_weights(sd.items())
    except InvalidWeightsError as err:
        raise CheckpointError(f'{where}: {err}') from err
    return sd, source, num_iterations, num_features


def load_enhancer(model_path, device='cpu'):
    """A DCENet in eval mode, without gradients, on ``device``, loaded from ``model_path``.

    Accepts BasicSR checkpoints (``params_ema`` preferred over ``params``) and bare state dicts such as the released
    Zero-DCE / SCL-LLE files. Subnormal weights are flushed by DCENet's load hook. Raises :class:`CheckpointError`
    naming the file otherwise.
    """
    from sclle_basicsr.archs.dcenet_arch import DCENet

    sd, _, num_iterations, num_features = read_dcenet_state_dict(model_path)
    net = DCENet(num_iterations=num_iterations, num_features=num_features)
    net.load_state_dict(sd, strict=True)
    return net.eval().requires_grad_(False).to(resolve_device(device))
