"""The Table 3 study command: generated options differ from the shared ones only where the run's name says, a tiny
study runs end to end on a fake assets tree, a second invocation trains and scores nothing, missing assets are
named."""
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import load_script
from test_options import CHANGED_KEYS, differences

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.inference import backends
from sclle_basicsr.study import ablation_study as study
from sclle_basicsr.utils.assets import ENV_VAR

RUN_CHANGES = {'full_wo_Lsc': set(), **{k: v for k, v in CHANGED_KEYS.items() if k != 'wo_Lsc'}}
FOLDERS = {k: f'/data/{k}' for k in ('lq', 'positive', 'under', 'over')}


def random_vgg_base(tmp_path):
    """The shipped recipe with a random VGG-16 (tests have no ImageNet weights)."""
    base = study.load_options()
    base['train']['vgg_opt'] = {'weights_format': 'random', 'weights_path': None}
    path = tmp_path / 'base.yml'
    path.write_text(yaml.safe_dump(base))
    return str(path)


def test_every_run_is_covered():
    assert set(RUN_CHANGES) == set(study.RUNS)


@pytest.mark.parametrize('run', sorted(RUN_CHANGES))
def test_run_options_differ_from_the_shared_ones_only_where_they_say(run, tmp_path):
    common = study.common_options(study.load_options(random_vgg_base(tmp_path)), FOLDERS, 12, 32, 2, 7, 'fp32')
    opt = study.run_options(common, run)
    assert differences(common, opt) == {('', 'name')} | RUN_CHANGES[run]
    assert opt['name'] == f'ablation_{run}'
    neg = opt['datasets']['train']['dataroot_neg']
    contrastive = opt['train'].get('contrastive_opt')
    expected_neg = {'wo_neg': None, 'wo_over_neg': ['/data/under'],
                    'wo_under_neg': ['/data/over']}.get(run, ['/data/under', '/data/over'])
    assert neg == expected_neg
    assert (contrastive is None) == (run == 'wo_Lc')
    assert (contrastive or {}).get('use_negatives', True) == (run != 'wo_neg')
    assert ('retention_opt' in opt['train']) == (run != 'wo_Lfr')


def test_common_options_carry_the_budget(tmp_path):
    base = study.load_options(random_vgg_base(tmp_path))
    base['train']['semantic_opt'] = {'type': 'SemanticBrightnessLoss'}
    fp32 = study.common_options(base, FOLDERS, 600, 64, 3, 5, 'fp32')
    bf16 = study.common_options(base, FOLDERS, 600, 64, 3, 5, 'bf16')
    train_set = fp32['datasets']['train']
    assert (train_set['crop_size'], train_set['batch_size_per_gpu'], fp32['manual_seed']) == (64, 3, 5)
    assert fp32['train']['total_iter'] == 600 and fp32['logger']['save_checkpoint_freq'] == 100
    assert 'semantic_opt' not in fp32['train'] and 'amp' not in fp32['train']
    assert bf16['train']['amp'] == {'dtype': 'bf16'}
    assert differences(fp32, bf16) == {('train', 'amp')}


@pytest.mark.parametrize('flags, expected', [({'avx2', 'fma'}, 'fp32'), ({'avx2', 'avx512_bf16'}, 'bf16'),
                                              ({'amx_tile', 'amx_bf16'}, 'bf16'), (set(), 'fp32')])
def test_auto_precision_follows_the_cpu_flags(flags, expected, monkeypatch):
    monkeypatch.setattr(backends, 'cpu_flags', lambda: flags)
    assert study.resolve_precision('auto') == expected
    assert study.resolve_precision('fp32') == 'fp32' and study.resolve_precision('bf16') == 'bf16'
    with pytest.raises(study.StudyError, match='--precision'):
        study.resolve_precision('fp16')


def textured(rng, size, level):
    """A smooth random texture (NIQE needs structure) at mean grey ``level`` in [0, 1]."""
    small = rng.random((size // 8, size // 8, 3)).astype(np.float32)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC) + 0.1 * rng.random((size, size, 3))
    img = (img - img.mean()) * 0.4 + level
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def fake_assets(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / 'assets'
    layout = {'sice_part1_subset': [0.1, 0.12, 0.5, 0.55, 0.5, 0.9, 0.92],
              'lowlight_unlabelled/LOL_low': [0.08, 0.1], 'lowlight_unlabelled/BDD_night': [0.06, 0.1],
              'lle_testsets/DICM': [0.15]}
    for folder, levels in layout.items():
        os.makedirs(root / folder)
        size = 192 if folder.startswith('lle') else 40  # NIQE needs several 96x96 blocks
        for i, level in enumerate(levels):
            cv2.imwrite(str(root / folder / f'{i}.png'), textured(rng, size, level))
    os.makedirs(root / 'weights')
    for name in ('sclle_official.pth', 'zerodce_official.pth'):
        torch.manual_seed(len(name))
        torch.save(DCENet().state_dict(), root / 'weights' / name)
    return root


def test_tiny_study_end_to_end_then_resumed_without_work(fake_assets, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(fake_assets))
    study_dir = tmp_path / 'study'
    runs = ('full_wo_Lsc', 'wo_neg')
    kwargs = dict(runs=runs, iters=2, crop=32, batch=2, precision='fp32', seed=3, sets=('DICM', ), max_images=1,
                  base_options=random_vgg_base(tmp_path), jobs=2)
    messages = []
    md = study.run_study(str(study_dir), log=messages.append, **kwargs)
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert sum(f'on {threads} thread(s)' in m for m in messages) == 2, messages  # both runs side by side

    for run in runs:
        assert osp.isfile(study.final_checkpoint(str(study_dir), run))
        opt = yaml.safe_load((study_dir / 'options' / f'ablation_{run}.yml').read_text())
        assert opt['train']['total_iter'] == 2 and opt['manual_seed'] == 3
    assert len(os.listdir(study_dir / 'data' / 'lq')) == 4 + 2  # LOL_low + BDD_night + the under-exposed SICE
    methods = ['input', *runs, 'sclle_released', 'zerodce_released']
    for method in methods:
        cached = json.loads((study_dir / 'niqe' / f'{method}.json').read_text())
        assert np.isfinite(cached['niqe']['DICM']) and cached['niqe']['average'] == cached['niqe']['DICM']
    rows = (study_dir / 'table3.csv').read_text().splitlines()
    assert rows[0].split(',')[:3] == ['method', 'DICM', 'average']
    assert [r.split(',')[0] for r in rows[1:]] == methods
    assert '4.26' in md and '3.51' in md  # the paper's Input and Ours DICM values beside the measured ones
    sheet = cv2.imread(str(study_dir / 'compare.png'))
    assert sheet is not None and sheet.shape[0] == 240  # one image (first of DICM), one row

    stamps = {m: (study_dir / 'niqe' / f'{m}.json').stat().st_mtime_ns for m in methods}
    messages.clear()
    assert study.run_study(str(study_dir), log=messages.append, **kwargs) == md
    assert not [m for m in messages if 'training into' in m or '[table1]' in m], messages
    assert {m: (study_dir / 'niqe' / f'{m}.json').stat().st_mtime_ns for m in methods} == stamps

    with pytest.raises(study.StudyError, match='full_wo_Lsc .* other settings'):
        study.run_study(str(study_dir), log=messages.append, **dict(kwargs, iters=3))


def test_unreadable_sheet_image_is_named(fake_assets):
    from sclle_basicsr.study.contact_sheet import enhancer_sheet
    weights = str(fake_assets / 'weights' / 'sclle_official.pth')
    sheet = enhancer_sheet([str(fake_assets / 'lle_testsets' / 'DICM' / '0.png')], [('a', weights)], height=60)
    assert sheet.shape == (60, 120, 3)
    with pytest.raises(ValueError, match='cannot read image .*missing.png'):
        enhancer_sheet([str(fake_assets / 'missing.png')], [('a', weights)])


def test_missing_assets_are_named(tmp_path, monkeypatch, fake_assets):
    monkeypatch.setenv(ENV_VAR, str(fake_assets))
    os.rename(fake_assets / 'lowlight_unlabelled' / 'BDD_night', tmp_path / 'moved')
    with pytest.raises(study.StudyError, match=f'BDD_night.*{ENV_VAR}'):
        study.run_study(str(tmp_path / 'study'), runs=('wo_Lc', ), base_options=random_vgg_base(tmp_path),
                        sets=('DICM', ))
    with pytest.raises(study.StudyError, match=r'set\(s\) DICM under .*--dataroot'):
        study.run_study(str(tmp_path / 'study'), dataroot=str(tmp_path), sets=('DICM', ))
    os.remove(fake_assets / 'weights' / 'zerodce_official.pth')
    with pytest.raises(study.StudyError, match=f'zerodce_official.pth.*{ENV_VAR}'):
        study.run_study(str(tmp_path / 'study'), sets=('DICM', ))
    assert not (tmp_path / 'study').exists()  # refused before anything is written


def test_cli_reports_an_unknown_set_as_an_error(tmp_path, fake_assets, monkeypatch):
    cli = load_script('run_ablation_study')
    monkeypatch.setenv(ENV_VAR, str(fake_assets))
    with pytest.raises(SystemExit, match=r'error: asset folder .*lle_testsets/NOPE'):
        cli.main(['--study_dir', str(tmp_path / 'study'), '--sets', 'NOPE'])


def test_recipe_overrides_land_in_the_options_or_are_refused_by_name():
    opt = {'train': {'optim_g': {'type': 'Adam', 'lr': 5e-4}, 'total_iter': 10}}
    study.apply_overrides(opt, ['train:optim_g:lr=1e-3', 'train:scheduler={type: CosineAnnealingRestartLR, '
                                'periods: [10], eta_min: 1.0e-6}'])
    assert opt['train']['optim_g'] == {'type': 'Adam', 'lr': 1e-3}
    assert opt['train']['scheduler'] == {'type': 'CosineAnnealingRestartLR', 'periods': [10], 'eta_min': 1e-6}
    for entry, message in (('train:optim_g:lr', 'expected KEY:SUBKEY=VALUE'),
                           ('nope:lr=1', 'nope is not a section'),
                           ('train:x=[1', 'not YAML')):
        with pytest.raises(study.StudyError, match=message):
            study.apply_overrides(opt, [entry])
