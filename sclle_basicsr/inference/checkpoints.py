"""The validated DCENet reader and loader, built on :mod:`sclle_basicsr.utils.checkpoints`."""
import torch

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.inference.backends import resolve_device
from sclle_basicsr.utils.checkpoints import (
    CheckpointError,
    InvalidWeightsError,
    check_weights,
    read_checkpoint,
    unwrap_state_dict,
)


def read_dcenet_state_dict(model_path):
    """``(state_dict, source_key, num_iterations, num_features)`` from a checkpoint file, validated.

    The width and number of curve iterations are read from the weights. Names, shapes and values (every tensor
    finite: NaN or Inf weights give black or NaN images) are checked; errors name the file and the tensor.
    """
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
    sd, _, num_iterations, num_features = read_dcenet_state_dict(model_path)
    net = DCENet(num_iterations=num_iterations, num_features=num_features)
    net.load_state_dict(sd, strict=True)
    return net.eval().requires_grad_(False).to(resolve_device(device))
