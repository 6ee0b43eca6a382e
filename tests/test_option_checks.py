"""Unknown and mistyped options of the plugin's parts are refused, with the nearest valid key, before a run starts."""
import copy
import glob
import inspect
import os.path as osp
import re

import pytest
import yaml
from basicsr.utils.options import ordered_yaml

from sclle_basicsr.runner.option_checks import (
    BASICSR_DATASET_OPTIONS,
    DATASET_OPTIONS,
    MODEL_SECTIONS,
    SCL_LOSS_KEYS,
    OptionsError,
    check_options,
)
from sclle_basicsr.utils.assets import REPO_ROOT

OPTION_FILES = sorted(glob.glob(osp.join(REPO_ROOT, 'options', '*', '*.yml')))


def load(path):
    with open(path) as f:
        opt = yaml.load(f, Loader=ordered_yaml()[0])  # BasicSR's loader: '1e-3' is a string there too
    opt['is_train'] = f'{osp.sep}train{osp.sep}' in path
    for phase, dataset in opt['datasets'].items():  # what parse_options adds
        dataset['phase'] = phase.split('_')[0]
    return opt


@pytest.mark.parametrize('path', OPTION_FILES, ids=[osp.basename(p) for p in OPTION_FILES])
def test_every_committed_option_file_passes(path):
    check_options(load(path), path)


def refused(opt):
    with pytest.raises(OptionsError) as err:
        check_options(opt, 'x.yml')
    message = str(err.value)
    assert '\n' not in message and message.startswith('x.yml: ')
    return message


RECIPE = osp.join(REPO_ROOT, 'options', 'train', 'train_SCLLLE_cityscapes_sice.yml')
PAIRED = osp.join(REPO_ROOT, 'options', 'train', 'train_EDSRx1_SRWithSCLLosses_paired.yml')
STOCK = osp.join(REPO_ROOT, 'options', 'train', 'train_EDSRx1_SRModel_SCL_pixel_opt.yml')


@pytest.mark.parametrize('where, key, expected', [
    ('datasets.train', 'crop_sise', 'datasets.train.crop_sise: unknown option of UnpairedContrastiveDataset '
     '(did you mean crop_size?)'),
    ('datasets.train', 'batch_size_per_gup', 'datasets.train.batch_size_per_gup: unknown option of '
     'UnpairedContrastiveDataset (did you mean batch_size_per_gpu?)'),
    ('train', 'totl_iter', 'train.totl_iter: unknown option of SCLLLEModel (train:) (did you mean total_iter?)'),
    ('train', 'grad_clip', 'train.grad_clip: unknown option of SCLLLEModel (train:) (did you mean grad_clip_norm?)'),
    ('network_g', 'num_feature', 'network_g.num_feature: unknown option of DCENet (did you mean num_features?)'),
    ('train.contrastive_opt', 'gram_weigth', 'train.contrastive_opt.gram_weigth: unknown option of '
     'SCLContrastiveLoss (did you mean gram_weight?)'),
    ('train.vgg_opt', 'weights_fromat', 'train.vgg_opt.weights_fromat: unknown option of FrozenVGG16Features '
     '(did you mean weights_format?)'),
    ('train.segmentor_opt', 'chekpoint', 'train.segmentor_opt.chekpoint: unknown option of FrozenDeepLabV3Plus '
     '(did you mean checkpoint?)'),
    ('val', 'tile_pda', 'val.tile_pda: unknown option of SCLLLEModel (val:) (did you mean tile_pad?)'),
])
def test_a_mistyped_key_is_refused_with_the_nearest_one(where, key, expected):
    opt = load(RECIPE)
    section = opt
    for part in where.split('.'):
        section = section[part]
    section[key] = 1
    assert refused(opt) == f'x.yml: {expected}'


def test_a_key_far_from_any_lists_the_valid_ones():
    opt = load(RECIPE)
    opt['network_g']['xyz'] = 1
    assert refused(opt) == 'x.yml: network_g.xyz: unknown option of DCENet (valid: init_std, num_features, ' \
        'num_iterations, type)'


def test_a_string_loss_weight_names_the_option_and_the_loss():
    opt = load(RECIPE)
    opt['train']['contrastive_opt']['loss_weight'] = '1e-3'  # what YAML makes of loss_weight: 1e-3
    assert refused(opt) == ("x.yml: train.contrastive_opt.loss_weight: SCLContrastiveLoss expects a number, got the "
                            "string '1e-3' (YAML reads a number without a dot, such as 1e-3, as a string: write "
                            "1.0e-3)")


@pytest.mark.parametrize('path, where, key, value, expected', [
    (RECIPE, 'datasets.train', 'crop_size', 384.0, 'UnpairedContrastiveDataset expects an integer, got 384.0 (float)'),
    (RECIPE, 'datasets.train', 'use_hflip', 'yes', "UnpairedContrastiveDataset expects true or false, got the string "
     "'yes'"),
    (RECIPE, 'network_g', 'num_iterations', True, 'DCENet expects an integer, got True (bool)'),
    (RECIPE, 'train', 'grad_clip_norm', '0.1', "SCLLLEModel (train:) expects a number or ~, got the string '0.1' "
     "(a number in quotes: write it without them)"),
    (RECIPE, 'train.color_opt', 'smooth_weight', [200], 'ColorConstancyLoss expects a number, got [200] (list)'),
    (PAIRED, 'train.contrastive_opt', 'loss_weight', 'one', "SCLContrastiveLoss expects a number, got the "
     "string 'one'"),
    (STOCK, 'train.pixel_opt', 'use_negatives', 'false', "SCLContrastiveLoss expects true or false, got the string "
     "'false'"),
    (PAIRED, 'datasets.train', 'dataroot_gt', 3, 'PairedContrastiveDataset expects a string, got 3 (int)'),
])
def test_a_wrong_type_names_the_option_and_the_part(path, where, key, value, expected):
    opt = load(path)
    section = opt
    for part in where.split('.'):
        section = section[part]
    section[key] = value
    assert refused(opt) == f'x.yml: {where}.{key}: {expected}'


def test_a_mistyped_type_of_this_plugin_gets_the_nearest_name_and_all_problems_are_one_line():
    opt = load(RECIPE)
    opt['train']['semantic_opt']['type'] = 'SemanticBrightnesLoss'
    opt['datasets']['train']['crop_sise'] = 1
    message = refused(opt)
    assert "train.semantic_opt.type: no loss named 'SemanticBrightnesLoss' (did you mean SemanticBrightnessLoss?)" \
        in message and 'datasets.train.crop_sise' in message and message.count('; ') == 1


def test_parts_of_other_packages_are_left_alone():
    opt = load(STOCK)  # BasicSR's SRModel and EDSR
    opt['network_g']['anything'] = 1
    opt['train']['totl_iter'] = 1  # SRModel's train section is BasicSR's business
    check_options(opt)


def test_the_test_runner_does_not_check_train_sections():
    opt = load(RECIPE)
    opt['is_train'] = False
    opt['train']['totl_iter'] = 1
    check_options(opt)


@pytest.mark.parametrize('name, module', [
    ('UnpairedContrastiveDataset', 'sclle_basicsr.data.unpaired_contrastive_dataset'),
    ('PairedContrastiveDataset', 'sclle_basicsr.data.paired_contrastive_dataset'),
    ('CheckedSingleImageDataset', 'sclle_basicsr.data.checked_single_image_dataset'),
])
def test_every_dataset_option_its_code_reads_is_declared(name, module):
    import importlib
    source = inspect.getsource(importlib.import_module(module))
    if name == 'CheckedSingleImageDataset':
        from basicsr.data import single_image_dataset
        source += inspect.getsource(single_image_dataset)
    read = set(re.findall(r"""\bopt(?:\.get\(|\[)'(\w+)'""", source)) | set(re.findall(r"'(\w+)' in (?:self\.)?opt",
                                                                                       source))
    assert read, module
    declared = set(DATASET_OPTIONS[name]) | set(BASICSR_DATASET_OPTIONS)
    assert read <= declared, read - declared


@pytest.mark.parametrize('module, model', [('sclle_basicsr.models.sclle_model', 'SCLLLEModel'),
                                           ('sclle_basicsr.models.sr_with_scl_losses_model', 'SRWithSCLLossesModel')])
def test_every_train_option_a_model_reads_is_declared(module, model):
    import importlib
    source = inspect.getsource(importlib.import_module(module))
    read = set(re.findall(r"""train_opt(?:\.get\(|\[)'(\w+)'""", source))
    read |= set(re.findall(r"""opt\['train'\](?:\.get\(|\[)'(\w+)'""", source))
    assert read <= set(MODEL_SECTIONS[model]['train']), read - set(MODEL_SECTIONS[model]['train'])
    val_read = set(re.findall(r"""val_opt\.get\('(\w+)'""", source))
    assert val_read <= set(MODEL_SECTIONS[model].get('val', {})), val_read


def test_options_are_not_changed_by_the_check():
    opt = load(RECIPE)
    before = copy.deepcopy(opt)
    check_options(opt)
    assert opt == before


def test_both_models_take_the_scl_losses_in_one_shape():
    """The recipe's loss block, moved into the paired model's train: section as it is, passes there; the block nested
    under another key is refused in both."""
    recipe, paired = load(RECIPE), load(PAIRED)
    losses = {k: v for k, v in recipe['train'].items() if k in ('contrastive_opt', 'retention_opt', 'vgg_opt')}
    paired['train'] = {**{k: v for k, v in paired['train'].items() if not k.endswith('_opt')}, **losses}
    check_options(paired, 'paired.yml')
    for opt in (recipe, paired):
        opt['train']['scl_losses'] = {'contrastive_opt': opt['train'].pop('contrastive_opt')}
        assert 'scl_losses' in refused(opt)


def test_the_checked_loss_keys_are_the_ones_scl_losses_builds():
    """The checks keep their own table (the module imports no torch); it must name every loss SCLLosses builds."""
    from sclle_basicsr.losses.scl_losses import LOSS_TYPES
    assert SCL_LOSS_KEYS == {cls.option_key: cls.__name__ for cls in LOSS_TYPES}
