"""The shipped option files: they parse, lower-is-better metrics say so, each ablation file is the recipe with the
ablation's change (sclle_basicsr/study/ablations.py), and each configured loss set starts training (one SCLLosses step;
VGG and segmentor swapped for tiny random ones)."""
import copy
import glob
import os.path as osp

import pytest
import torch
import yaml
from basicsr.utils.options import ordered_yaml
from basicsr.utils.registry import METRIC_REGISTRY
from test_train_pipeline import TINY_SEGMENTOR

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.losses.scl_losses import SCLLosses
from sclle_basicsr.metrics import LOWER_IS_BETTER, missing_better_lower
from sclle_basicsr.study.ablations import ABLATIONS, ablated
from sclle_basicsr.utils.assets import REPO_ROOT

RECIPE = 'options/train/train_SCLLLE_cityscapes_sice.yml'
CHANGED_KEYS = {  # ablation -> the (section, key) pairs it changes in a recipe
    'wo_Lc': {('train', 'contrastive_opt')},
    'wo_Lsc': {('train', 'semantic_opt')},
    'wo_Lfr': {('train', 'retention_opt')},
    'wo_neg': {('datasets.train', 'dataroot_neg'), ('train', 'contrastive_opt')},
    'wo_over_neg': {('datasets.train', 'dataroot_neg')},
    'wo_under_neg': {('datasets.train', 'dataroot_neg')},
}


def load(path):
    with open(osp.join(REPO_ROOT, path)) as f:
        return yaml.load(f, Loader=ordered_yaml()[0])


def plain(opt):
    """``opt`` with plain dicts (an OrderedDict compares the order of its keys too)."""
    if isinstance(opt, dict):
        return {k: plain(v) for k, v in opt.items()}
    return [plain(v) for v in opt] if isinstance(opt, list) else opt


def differences(a, b, section=''):
    keys = set(a) | set(b)
    found = set()
    for key in keys:
        if isinstance(a.get(key), dict) and isinstance(b.get(key), dict) and key != 'contrastive_opt':
            found |= differences(a[key], b[key], f'{section}.{key}'.strip('.'))
        elif a.get(key) != b.get(key):
            found.add((section, key))
    return found


@pytest.mark.parametrize('path', sorted(glob.glob(osp.join(REPO_ROOT, 'options', '*', '*.yml'))))
def test_option_file_parses_with_known_types(path):
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY
    opt = load(path)
    MODEL_REGISTRY.get(opt['model_type'])
    ARCH_REGISTRY.get(opt['network_g']['type'])
    for dataset in opt['datasets'].values():
        DATASET_REGISTRY.get(dataset['type'])
    for key, value in opt.get('train', {}).items():
        if key.endswith('_opt') and isinstance(value, dict) and 'type' in value and key != 'optim_g':
            LOSS_REGISTRY.get(value['type'])
    for metric in ((opt.get('val') or {}).get('metrics') or {}).values():
        assert metric['type'] in METRIC_REGISTRY, metric


@pytest.mark.parametrize('path', sorted(glob.glob(osp.join(REPO_ROOT, 'options', '*', '*.yml'))))
def test_lower_is_better_metrics_say_so(path):
    """BasicSR keeps the highest value of a metric as "Best" unless it says ``better: lower``: NIQE and LOE must."""
    metrics = (load(path).get('val') or {}).get('metrics')
    assert missing_better_lower(metrics) == [], f'{path}: add better: lower to these metrics'


def test_the_check_names_lower_is_better_metrics_without_better_lower():
    metrics = {'niqe': {'type': 'calculate_niqe', 'crop_border': 0}, 'loe': {'type': 'calculate_loe'},
               'niqe_ok': {'type': 'calculate_niqe', 'better': 'lower'}, 'psnr': {'type': 'calculate_psnr'},
               'unique': {'type': 'calculate_unique'}}
    assert missing_better_lower(metrics) == ['niqe', 'loe']
    assert set(LOWER_IS_BETTER) <= set(METRIC_REGISTRY.keys())


def test_generated_table1_options_say_lower_is_better(tmp_path):
    from sclle_basicsr.evaluation import table1_options
    torch.save(DCENet().state_dict(), tmp_path / 'w.pth')
    opt = table1_options('x', str(tmp_path / 'w.pth'), {'SET': str(tmp_path)}, unique_weights='/w/UNIQUE.pt')
    assert set(opt['val']['metrics']) == {'niqe', 'unique', 'loe'}
    assert missing_better_lower(opt['val']['metrics']) == []


def test_the_demo_log_names_the_lowest_niqe_as_best():
    """BasicSR's own best-metric bookkeeping and log line, with the demo's metric options."""
    import logging

    from basicsr.models.sr_model import SRModel
    model = SRModel.__new__(SRModel)  # only the options and the best-metric record are used
    model.opt = load('options/train/train_SCLLLE_demo.yml')
    model._initialize_best_metric_results('val')
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger('basicsr')
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        for it, niqe in ((50, 5.9012), (100, 5.7669), (150, 6.4587)):
            model.metric_results = {'niqe': niqe, 'loe': 10.0 * it}
            for name, value in model.metric_results.items():
                model._update_best_metric_result('val', name, value, it)
            model._log_validation_metric_values(it, 'val', None)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert 'niqe: 6.4587\tBest: 5.7669 @ 100 iter' in records[-1].getMessage()
    assert 'loe: 1500.0000\tBest: 500.0000 @ 50 iter' in records[-1].getMessage()


def test_every_ablation_has_its_option_file_and_changed_keys():
    files = {osp.basename(p)[len('train_SCLLLE_ablation_'):-len('.yml')]
             for p in glob.glob(osp.join(REPO_ROOT, 'options', 'train', 'train_SCLLLE_ablation_*.yml'))}
    assert files == set(ABLATIONS) == set(CHANGED_KEYS)


@pytest.mark.parametrize('name', sorted(ABLATIONS))
def test_each_ablation_file_is_the_recipe_with_the_ablations_change(name):
    recipe, ablation = load(RECIPE), load(f'options/train/train_SCLLLE_ablation_{name}.yml')
    expected = ablated(recipe, name)
    expected['name'] = f'SCLLLE_ablation_{name}'
    assert plain(ablation) == plain(expected)
    assert differences(recipe, ablation) == {('', 'name')} | CHANGED_KEYS[name]


def tiny_train_opt(train_opt):
    train_opt = copy.deepcopy(train_opt)
    train_opt['vgg_opt'] = {'weights_format': 'random'}
    train_opt['segmentor_opt'] = yaml.safe_load(TINY_SEGMENTOR)
    return train_opt


@pytest.mark.parametrize('path', [RECIPE] + [f'options/train/train_SCLLLE_ablation_{s}.yml' for s in sorted(ABLATIONS)])
def test_configured_losses_start_training(path):
    opt = load(path)
    losses = SCLLosses(tiny_train_opt(opt['train']))
    negatives = opt['datasets']['train'].get('dataroot_neg') or []
    torch.manual_seed(0)
    net = DCENet(num_features=4)
    lq = torch.rand(2, 3, 24, 24) * 0.3
    out, curves = net(lq, return_curves=True)
    given = {'lq': lq, 'curves': curves, 'pos': torch.rand(2, 3, 24, 24),
             'neg': [torch.rand(2, 3, 24, 24) for _ in negatives] or None,
             'label': torch.randint(0, 19, (2, 24, 24))}
    total, logs = losses(out, **{k: v for k, v in given.items() if k in losses.required_inputs})
    total.backward()
    assert torch.isfinite(total) and net.e_conv1.weight.grad.abs().sum() > 0
    expected = {'contrastive_opt': 'l_con', 'semantic_opt': 'l_sc', 'retention_opt': 'l_fr', 'color_opt': 'l_cc'}
    assert set(logs) == {log for key, log in expected.items() if key in opt['train']}
