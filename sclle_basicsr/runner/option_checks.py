"""The options of the plugin's parts, checked before a run starts: unknown keys and wrong types are one error.

BasicSR hands a dataset its whole option dict and a model its ``train:`` section, so a mistyped key (``crop_sise``,
``totl_iter``, also when added by ``--force_yml``) is silently ignored and the default used; a string where a
number belongs (YAML reads ``1e-3`` as a string) fails at the first step, naming neither option nor loss.
:func:`check_options` checks every part of an option tree that belongs to this plugin, wherever it appears:

* datasets of this plugin (their own keys plus the ones BasicSR's loader reads),
* networks of this plugin (``network_g: {type: DCENet}``; the keyword arguments of the class),
* losses of this plugin, as any ``*_opt`` of any model, with their ``vgg`` /
  ``segmentor`` options and the shared ``vgg_opt`` / ``segmentor_opt``,
* the ``train:`` and ``val:`` sections of this plugin's models.

An unknown key is reported with the nearest valid one (``difflib``); parts of other packages are left alone.
"""
import difflib
import inspect
import re

from sclle_basicsr.utils.run_errors import RunError

INT, NUMBER, BOOL, STR, LIST, DICT, NULL = 'an integer', 'a number', 'true or false', 'a string', 'a list', \
    'a mapping', '~'
_IS = {
    INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
    NUMBER: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    BOOL: lambda v: isinstance(v, bool),
    STR: lambda v: isinstance(v, str),
    LIST: lambda v: isinstance(v, (list, tuple)),
    DICT: lambda v: isinstance(v, dict),
    NULL: lambda v: v is None,
}
ANY = ()  # no type check

# Keys BasicSR itself puts in or reads from a dataset's options (parse_options, build_dataloader, the train loop).
BASICSR_DATASET_OPTIONS = {'name': (STR, ), 'type': (STR, ), 'phase': (STR, ), 'scale': (INT, )}
BASICSR_LOADER_OPTIONS = {
    'batch_size_per_gpu': (INT, ), 'num_worker_per_gpu': (INT, ), 'use_shuffle': (BOOL, ),
    'dataset_enlarge_ratio': (NUMBER, ), 'prefetch_mode': (STR, NULL), 'num_prefetch_queue': (INT, ),
    'pin_memory': (BOOL, ), 'persistent_workers': (BOOL, ),
}

_CONTRASTIVE_DATASET = {
    'dataroot_lq': (STR, ), 'dataroot_label': (STR, NULL), 'dataroot_pos': (STR, NULL),
    'dataroot_neg': (STR, LIST, NULL), 'num_classes': (INT, ), 'ignore_index': (INT, ), 'crop_size': (INT, ),
    'use_hflip': (BOOL, ), 'darken': (DICT, NULL), 'random_in_val': (BOOL, ), 'seed': (INT, NULL),
    'repeat': (INT, ), 'check_images': (BOOL, ), 'io_backend': (DICT, ), 'resize_references': (BOOL, ),
    'neg_sampling': (STR, ), 'extra_inputs': (LIST, NULL),
}
# Datasets read their options from a dict: their keys are declared here (tests/test_option_checks.py checks that
# every key their source reads is declared).
DATASET_OPTIONS = {
    'UnpairedContrastiveDataset': _CONTRASTIVE_DATASET,
    'PairedContrastiveDataset': {**_CONTRASTIVE_DATASET, 'dataroot_gt': (STR, )},
    'CheckedSingleImageDataset': {  # BasicSR's SingleImageDataset's keys, plus check_images
        'dataroot_lq': (STR, ), 'meta_info_file': (STR, ), 'io_backend': (DICT, ), 'mean': (LIST, NULL),
        'std': (LIST, NULL), 'color': (STR, NULL), 'check_images': (BOOL, )},
}

# Classes built from keyword arguments get their keys from their signature and their types from the defaults;
# parameters that default to None are typed here.
REFINED_TYPES = {
    'DCENet': {'init_std': (NUMBER, NULL)},
    'FrozenVGG16Features': {'layers': (LIST, STR), 'weights_path': (STR, NULL), 'feature_scale': (NUMBER, NULL),
                            'mean': (LIST, NULL), 'std': (LIST, NULL)},
    'FrozenDeepLabV3Plus': {'config': (STR, NULL), 'checkpoint': (STR, NULL), 'cfg_options': (DICT, NULL),
                            'num_classes': (INT, NULL)},
    'SCLContrastiveLoss': {'vgg': (DICT, NULL)},
    'FeatureRetentionLoss': {'vgg': (DICT, NULL)},
    'SemanticBrightnessLoss': {'num_classes': (INT, NULL), 'segmentor': (DICT, NULL)},
}
# The shared networks of SCLLosses (``type`` optional) and the own ones a loss may carry.
NETWORK_OPTIONS = {'vgg_opt': 'FrozenVGG16Features', 'segmentor_opt': 'FrozenDeepLabV3Plus',
                   'vgg': 'FrozenVGG16Features', 'segmentor': 'FrozenDeepLabV3Plus'}
SCL_LOSS_KEYS = {'contrastive_opt': 'SCLContrastiveLoss', 'semantic_opt': 'SemanticBrightnessLoss',
                 'retention_opt': 'FeatureRetentionLoss', 'color_opt': 'ColorConstancyLoss',
                 'exposure_opt': 'ExposureControlLoss'}

_SCL_LOSSES = {**{key: (DICT, NULL) for key in SCL_LOSS_KEYS}, 'vgg_opt': (DICT, NULL), 'segmentor_opt': (DICT, NULL)}
_BASICSR_TRAIN = {'optim_g': (DICT, ), 'scheduler': (DICT, ), 'total_iter': (NUMBER, ), 'warmup_iter': (INT, ),
                  'ema_decay': (NUMBER, )}
_BASICSR_VAL = {'val_freq': (NUMBER, ), 'save_img': (BOOL, ), 'suffix': (STR, NULL), 'metrics': (DICT, NULL),
                'pbar': (BOOL, )}
# The train: and val: sections of this plugin's models (BasicSR's runner and SRModel read the BasicSR keys).
MODEL_SECTIONS = {
    'SCLLLEModel': {
        'train': {**_BASICSR_TRAIN, **_SCL_LOSSES, 'grad_clip_norm': (NUMBER, NULL), 'amp': (DICT, NULL),
                  'tf32': (BOOL, NULL), 'deterministic': (BOOL, STR, NULL)},
        'val': {**_BASICSR_VAL, 'tile': (INT, ), 'tile_pad': (INT, ), 'precision': (STR, ), 'backend': (STR, )},
    },
    'SRWithSCLLossesModel': {
        'train': {**_BASICSR_TRAIN, **_SCL_LOSSES, 'pixel_opt': (DICT, NULL), 'perceptual_opt': (DICT, NULL)},
    },
}
AMP_OPTIONS = {'dtype': (STR, )}


class OptionsError(RunError):
    """Unknown or mistyped options; the message names each, in the file they came from."""


def _plugin_class(registry, name):
    if not isinstance(name, str) or name not in registry:
        return None
    cls = registry.get(name)
    return cls if cls.__module__.startswith('sclle_basicsr.') else None


def signature_options(cls):
    """``{key: types}`` of a class built from keyword arguments (None when it also takes ``**kwargs``)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    refined = REFINED_TYPES.get(cls.__name__, {})
    options = {}
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, ):
            continue
        options[p.name] = refined.get(p.name, _types_of_default(p.default))
    return options


def _types_of_default(default):
    if isinstance(default, bool):
        return (BOOL, )
    if isinstance(default, int):
        return (INT, )
    if isinstance(default, float):
        return (NUMBER, )
    if isinstance(default, str):
        return (STR, )
    if isinstance(default, (list, tuple)):
        return (LIST, )
    if isinstance(default, dict):
        return (DICT, )
    return ANY


def _nearest(key, valid):
    close = difflib.get_close_matches(str(key), sorted(valid), n=1, cutoff=0.6)
    if close:
        return f'did you mean {close[0]}?'
    return 'valid: ' + ', '.join(sorted(valid))


def _describe(value):
    if isinstance(value, str):
        text = f'the string {value!r}'
        if re.fullmatch(r'[+-]?\d+[eE][+-]?\d+', value.strip()):
            return text + ' (YAML reads a number without a dot, such as 1e-3, as a string: write 1.0e-3)'
        try:
            float(value)
        except ValueError:
            return text
        return text + ' (a number in quotes: write it without them)'
    return f'{value!r} ({type(value).__name__})'


class _Checker:

    def __init__(self):
        self.problems = []

    def section(self, where, options, schema, owner):
        """Check the keys and value types of ``options`` (a dict at dotted path ``where``) against ``schema``."""
        if not isinstance(options, dict):
            self.problems.append(f'{where}: {owner} expects a mapping, got {_describe(options)}')
            return False
        for key, value in options.items():
            if key not in schema:
                self.problems.append(f'{where}.{key}: unknown option of {owner} ({_nearest(key, schema)})')
            elif schema[key] and not any(_IS[kind](value) for kind in schema[key]):
                self.problems.append(f'{where}.{key}: {owner} expects {" or ".join(schema[key])}, got '
                                     f'{_describe(value)}')
        return True

    def built_class(self, where, options, cls, type_optional=False):
        schema = signature_options(cls)
        if schema is None:
            return
        schema = {**schema, 'type': (STR, )} if type_optional or 'type' in options else schema
        if not self.section(where, options, schema, cls.__name__):
            return
        for key, network in NETWORK_OPTIONS.items():
            if key in schema and isinstance(options.get(key), dict):
                self.network(f'{where}.{key}', options[key], network)

    def network(self, where, options, default_type):
        from basicsr.utils.registry import ARCH_REGISTRY
        if not isinstance(options, dict):
            return
        cls = _plugin_class(ARCH_REGISTRY, options.get('type', default_type))
        if cls is not None:
            self.built_class(where, options, cls, type_optional=True)

    def typed(self, where, options, registry, kind):
        """A ``{type: ..., ...}`` block: checked when its type is one of this plugin's."""
        if not isinstance(options, dict) or 'type' not in options:
            return
        name = options['type']
        if not isinstance(name, str) or name not in registry:
            ours = [n for n, c in registry if c.__module__.startswith('sclle_basicsr.')]
            close = difflib.get_close_matches(str(name), ours, n=1, cutoff=0.75)
            if close:
                self.problems.append(f'{where}.type: no {kind} named {name!r} (did you mean {close[0]}?)')
            return
        cls = _plugin_class(registry, name)
        if cls is None:
            return
        if kind == 'dataset':
            schema = {**BASICSR_DATASET_OPTIONS, **BASICSR_LOADER_OPTIONS, **DATASET_OPTIONS.get(name, {})}
            if name in DATASET_OPTIONS:
                self.section(where, options, schema, name)
        else:
            self.built_class(where, options, cls)

    def losses(self, where, train):
        """Every loss of this plugin under a train section (``*_opt`` keys, any model) and the shared networks."""
        from basicsr.utils.registry import LOSS_REGISTRY
        for key, value in train.items():
            if key in NETWORK_OPTIONS and isinstance(value, dict):
                self.network(f'{where}.{key}', value, NETWORK_OPTIONS[key])
            elif key.endswith('_opt') and isinstance(value, dict):
                if key in SCL_LOSS_KEYS and 'type' not in value:
                    self.problems.append(f'{where}.{key}: no type (e.g. type: {SCL_LOSS_KEYS[key]})')
                self.typed(f'{where}.{key}', value, LOSS_REGISTRY, 'loss')


def check_options(opt, source='options'):
    """Raise :class:`OptionsError` listing every unknown or mistyped option of this plugin's parts in ``opt``
    (BasicSR's parsed options; ``source`` names their file in the message)."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY
    check = _Checker()
    for phase, dataset in (opt.get('datasets') or {}).items():
        check.typed(f'datasets.{phase}', dataset, DATASET_REGISTRY, 'dataset')
    for key, value in opt.items():
        if key.startswith('network_'):
            check.typed(key, value, ARCH_REGISTRY, 'network')
    model = _plugin_class(MODEL_REGISTRY, opt.get('model_type'))
    sections = MODEL_SECTIONS.get(model.__name__, {}) if model is not None else {}
    for name, schema in sections.items():
        if name == 'train' and not opt.get('is_train', True):
            continue
        if isinstance(opt.get(name), dict):
            check.section(name, opt[name], schema, f'{model.__name__} ({name}:)')
    train = opt.get('train') if opt.get('is_train', True) else None
    if isinstance(train, dict):
        check.losses('train', train)
        if isinstance(train.get('amp'), dict) and 'train' in sections:
            check.section('train.amp', train['amp'], AMP_OPTIONS, 'train.amp')
    if check.problems:
        raise OptionsError(f'{source}: ' + '; '.join(check.problems))
