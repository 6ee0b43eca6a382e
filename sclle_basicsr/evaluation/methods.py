"""The methods a table compares: the input itself (``identity``), DCE-Net checkpoints (``--checkpoints``) and any
BasicSR network described by a test option file (``--configs``).

A method is a ``(name, source)`` pair; ``source`` is ``None`` (identity), a checkpoint path (DCE-Net, width and
iterations read from the weights) or a :class:`NetworkConfig`.  Every network is built and its weights loaded when
the command line is parsed, so that a wrong file or option is a one-line error before any image is scored.

DCE-Net checkpoints run on the inference backend ``auto`` (ONNX Runtime or OpenVINO on a CPU), tiled on request: its
receptive field is known, so tiles reproduce the whole-image result.  A ``--configs`` network runs its own PyTorch
forward on the whole image (backend ``torch``): an arbitrary arch need not export to ONNX, and tiles of an unknown
receptive field would change its output.
"""
import importlib
import os.path as osp
import re
from dataclasses import dataclass
from typing import Optional

import yaml

from sclle_basicsr.evaluation.common import EvaluationError
from sclle_basicsr.inference import CheckpointError, read_dcenet_state_dict, unwrap_state_dict
from sclle_basicsr.utils.assets import REPO_ROOT
from sclle_basicsr.utils.checkpoints import read_checkpoint

IDENTITY = 'identity'
_NAME = re.compile(r'[A-Za-z0-9_.-]+')


@dataclass(frozen=True)
class NetworkConfig:
    """The network of a BasicSR test option file: its ``network_g`` and the weights its ``path`` section names.

    ``pretrain`` is absolute (a relative path in the file is relative to the repository root, as for
    ``sclle_basicsr/test.py``); ``param_key`` and ``strict`` default as in BasicSR's SRModel (``params``, True).
    """
    options_file: str
    spec: str
    network_g: dict
    pretrain: str
    param_key: Optional[str] = 'params'
    strict: bool = True

    @property
    def where(self):
        return f'options file {self.options_file} (--configs {self.spec})'


def _one_line(err, limit=400):
    text = ' '.join(str(err).split())
    return text if len(text) <= limit else text[:limit] + ' ...'


def _check_name(name, spec, option):
    if not name or not _NAME.fullmatch(name):
        raise EvaluationError(f'name {name!r} in {option} {spec!r}: use letters, digits, _ . -')
    if name == IDENTITY:
        raise EvaluationError(f'{option} {spec!r}: the name "identity" is reserved for the input images')


def import_modules(modules):
    """Import ``modules`` (``--imports``): the archs they register can then be named in ``network_g``."""
    for module in modules or ():
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise EvaluationError(f'--imports {module}: cannot import it ({err})') from err


def parse_checkpoint(spec):
    """``'sclle=/w/a.pth'`` -> ``('sclle', '/w/a.pth')`` (absolute), checked as a DCE-Net checkpoint."""
    if '=' not in spec:
        raise EvaluationError(f'--checkpoints entry {spec!r}: expected name=path or "identity"')
    name, path = spec.split('=', 1)
    _check_name(name, spec, '--checkpoints')
    if not osp.isfile(path):
        raise EvaluationError(f'checkpoint {path} (--checkpoints {spec}) not found')
    try:
        read_dcenet_state_dict(path)
    except CheckpointError as err:  # first line: torch's own explanation can run to a page
        raise EvaluationError(f'checkpoint {path} (--checkpoints {spec}) is not usable: '
                              f'{str(err).splitlines()[0]}') from err
    return name, osp.abspath(path)


def parse_config(spec):
    """``'esr=opt.yml'`` -> ``('esr', NetworkConfig)``, its network built and loaded once as a check.

    Only ``network_g`` and ``path`` (``pretrain_network_g``, ``param_key_g``, ``strict_load_g``) are read.
    """
    if '=' not in spec:
        raise EvaluationError(f'--configs entry {spec!r}: expected name=options.yml')
    name, path = spec.split('=', 1)
    _check_name(name, spec, '--configs')
    where = f'options file {path} (--configs {spec})'
    if not osp.isfile(path):
        raise EvaluationError(f'{where} not found')
    try:
        with open(path) as f:
            opt = yaml.safe_load(f)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise EvaluationError(f'{where} cannot be read as YAML: {_one_line(err)}') from err
    if not isinstance(opt, dict):
        raise EvaluationError(f'{where} is not a mapping of BasicSR options')
    net_opt = opt.get('network_g')
    if not isinstance(net_opt, dict) or not isinstance(net_opt.get('type'), str):
        raise EvaluationError(f'{where}: no network_g (a mapping with the arch name in network_g.type)')
    path_opt = opt.get('path') or {}
    if not isinstance(path_opt, dict):
        raise EvaluationError(f'{where}: path is not a mapping')
    pretrain = path_opt.get('pretrain_network_g')
    if not pretrain or not isinstance(pretrain, str):
        raise EvaluationError(f'{where}: path.pretrain_network_g (the network weights) is not set')
    param_key = path_opt.get('param_key_g', 'params')
    if param_key is not None and not isinstance(param_key, str):
        raise EvaluationError(f'{where}: path.param_key_g must be a key such as params_ema, or ~ for a bare state dict')
    config = NetworkConfig(options_file=osp.abspath(path), spec=spec, network_g=dict(net_opt),
                           pretrain=osp.normpath(osp.join(REPO_ROOT, osp.expanduser(pretrain))),
                           param_key=param_key, strict=bool(path_opt.get('strict_load_g', True)))
    build_network_from_config(config)
    return name, config


def parse_methods(specs, configs=None, imports=()):
    """``--checkpoints`` and ``--configs`` entries -> ``[(name, source)]`` (checked, names unique).

    ``['identity', 'sclle=/w/a.pth']`` -> ``[('identity', None), ('sclle', '/w/a.pth')]``; a ``--configs`` entry
    ``'esr=opt.yml'`` -> ``('esr', NetworkConfig)``.  ``imports`` are imported first (``--imports``).
    """
    import_modules(imports)
    methods = [(IDENTITY, None) if spec == IDENTITY else parse_checkpoint(spec) for spec in specs or []]
    methods += [parse_config(spec) for spec in configs or []]
    names = [name for name, _ in methods]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise EvaluationError(f'method name {twice[0]!r} given twice (--checkpoints / --configs names must differ)')
    if not methods:
        raise EvaluationError('no checkpoints given (--checkpoints name=path ... and/or identity'
                              + (', or --configs name=options.yml)' if configs is not None else ')'))
    return methods


def read_config_weights(config):
    """The state dict ``path.pretrain_network_g`` holds, chosen by ``param_key_g`` as BasicSR's loader does
    (that entry, else ``params``; ``~``: the file is a bare state dict)."""
    try:
        obj = read_checkpoint(config.pretrain)
    except CheckpointError as err:
        raise EvaluationError(f'{config.where}, option path.pretrain_network_g: {str(err).splitlines()[0]}') from err
    keys = () if config.param_key is None else (config.param_key, 'params')
    try:
        state, source = unwrap_state_dict(obj, config.pretrain, keys)
    except CheckpointError as err:
        raise EvaluationError(f'{config.where}, option path.pretrain_network_g: {err}') from err
    if config.param_key is not None and source is None:
        raise EvaluationError(f'{config.where}: {config.pretrain} has no "{config.param_key}" or "params" entry '
                              '(option path.param_key_g; ~ for a bare state dict)')
    return state


def build_network_from_config(config, device='cpu'):
    """``network_g`` built by BasicSR's ``build_network``, its weights loaded; eval mode, no gradients."""
    from basicsr.archs import build_network
    from basicsr.utils.registry import ARCH_REGISTRY

    from sclle_basicsr.inference import InvalidWeightsError, resolve_device
    from sclle_basicsr.utils.checkpoints import check_weights

    arch = config.network_g['type']
    registered = next((name for name in (arch, f'{arch}_basicsr') if name in ARCH_REGISTRY), None)  # BasicSR's names
    if registered is None:
        raise EvaluationError(f'{config.where}: network_g.type {arch!r} is not a registered BasicSR arch (an arch of '
                              'your own: --imports the module that registers it)')
    try:
        net = build_network(dict(config.network_g, type=registered))
    except Exception as err:  # the arch's own constructor: any error means "wrong network_g"
        raise EvaluationError(f'{config.where}: network_g cannot be built: {type(err).__name__}: '
                              f'{_one_line(err)}') from err
    state = read_config_weights(config)
    try:
        net.load_state_dict(state, strict=config.strict)
    except RuntimeError as err:
        raise EvaluationError(f'{config.where}: {config.pretrain} (path.pretrain_network_g) does not fit network_g '
                              f'{arch}: {_one_line(err)}') from err
    try:
        check_weights(net.state_dict().items())
    except InvalidWeightsError as err:
        raise EvaluationError(f'{config.where}: {config.pretrain} (path.pretrain_network_g): {err}') from err
    return net.eval().requires_grad_(False).to(resolve_device(device))


def describe(source):
    """How messages name a method's source."""
    if source is None:
        return IDENTITY
    return source.where if isinstance(source, NetworkConfig) else f'checkpoint {source}'


def load_method(source, device='cpu'):
    """``None`` (identity), a DCENet loaded by :func:`~sclle_basicsr.inference.load_enhancer`, or the network of a
    :class:`NetworkConfig`."""
    if source is None:
        return None
    if isinstance(source, NetworkConfig):
        return build_network_from_config(source, device)
    from sclle_basicsr.inference import load_enhancer
    try:
        return load_enhancer(source, device)
    except CheckpointError as err:
        raise EvaluationError(f'checkpoint {source} is not usable: {str(err).splitlines()[0]}') from err


def inference_options(source, tile=0):
    """``enhance_tensor`` options for a method: DCE-Net tiled on the ``auto`` backend, others whole on ``torch``."""
    return {'backend': 'torch'} if isinstance(source, NetworkConfig) else {'tile': tile}


def enhance(net, x, what='', **kwargs):
    """``x`` (N, 3, H, W) RGB [0, 1] enhanced by ``net`` through ``enhance_tensor`` (``None``: returned as is).

    NaN or Inf weights or results are an :class:`EvaluationError` starting with ``what``: quantised, they would
    become black pixels and a wrong table.
    """
    if net is None:
        return x
    from sclle_basicsr.inference import InvalidWeightsError, NonFiniteOutputError, enhance_tensor
    try:
        y = enhance_tensor(net, x, **kwargs)
    except (InvalidWeightsError, NonFiniteOutputError) as err:
        raise EvaluationError(f'{what}: {err}') from err
    return y.clamp(0, 1)


def require_input_size(y, x, source, image, why):
    """Refuse an output ``y`` whose shape differs from the input ``x`` (a network that rescales) where a table
    compares pixels with something of the input's size; ``why`` says what, for the message."""
    if y.shape != x.shape:
        option = 'network_g' if isinstance(source, NetworkConfig) else 'the weights'
        raise EvaluationError(f'{describe(source)}: the network returns {tuple(y.shape)} for {image} of '
                              f'{tuple(x.shape)}; {why} and needs the input size (option {option})')
    return y
