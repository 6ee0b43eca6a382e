"""The model zoo: every committed file matches its sha256 and loads as DCE-Net; the full recipe is there; its
published NIQE is recomputed from the file; ``add`` and ``verify`` work on a generated study and catch changed
weights and wrong figures."""
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import require_asset

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.study import model_zoo


def test_committed_files_match_their_sha256_and_load_as_dcenet():
    entries = model_zoo.check_files()
    assert any('full_recipe' in e['file'] for e in entries), [e['file'] for e in entries]
    assert set(os.listdir(model_zoo.ZOO_DIR)) == {e['file'] for e in entries} | {'index.json', 'README.md'}
    for e in entries:
        DCENet().load_state_dict(torch.load(os.path.join(model_zoo.ZOO_DIR, e['file']), weights_only=True))
    with open(os.path.join(model_zoo.ZOO_DIR, 'README.md')) as f:
        assert f.read() == model_zoo.readme(entries)


@pytest.mark.parametrize('name', ['sclle_full_recipe_wo_Lsc_1k.pth', 'sclle_long_run_variance100_4k.pth'])
def test_published_niqe_is_recomputed_from_the_committed_file(tmp_path, name):
    require_asset('lle_testsets', 'LIME')
    compared = model_zoo.verify(names=[name], sets=('LIME', ), out=str(tmp_path / 'verify'), log=lambda *_: None)
    assert [(f, s) for f, s, _, _ in compared] == [(name, 'LIME')]


def _textured(rng, size=192):
    small = rng.random((size // 8, size // 8, 3)).astype(np.float32)
    img = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC) * 0.3 + 0.1
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def test_add_then_verify_on_a_generated_study(tmp_path):
    rng = np.random.default_rng(0)
    os.makedirs(tmp_path / 'sets' / 'DICM')
    for i in range(2):
        cv2.imwrite(str(tmp_path / 'sets' / 'DICM' / f'{i}.png'), _textured(rng))
    torch.manual_seed(0)
    params, params_ema = DCENet().state_dict(), DCENet().state_dict()
    study_dir, checkpoint = tmp_path / 'study', tmp_path / 'study' / 'net_g_latest.pth'
    os.makedirs(study_dir / 'options')
    os.makedirs(study_dir / 'niqe')
    torch.save({'params': params, 'params_ema': params_ema}, checkpoint)
    (study_dir / 'options' / 'ablation_run.yml').write_text(yaml.safe_dump({'train': {'total_iter': 7}}))
    rows, _ = model_zoo.ev.run_table1([('run', str(checkpoint))], str(tmp_path / 'scored'), ('DICM', ),
                                      str(tmp_path / 'sets'), log=lambda *_: None)
    niqe = {'DICM': rows[0]['DICM'], 'average': rows[0]['average']}
    cache = {'settings': {'weights': str(checkpoint), 'sha256': model_zoo.sha256_of(checkpoint), 'max_images': None},
             'niqe': niqe}
    (study_dir / 'niqe' / 'run.json').write_text(json.dumps(cache))

    zoo = tmp_path / 'zoo'
    os.makedirs(zoo)
    entry = model_zoo.add(str(study_dir), 'run', 'tiny_full_recipe', 'python make_it.py', zoo_dir=str(zoo))
    assert entry['iterations'] == 7 and entry['niqe'] == niqe
    saved = torch.load(zoo / 'tiny_full_recipe.pth', weights_only=True)
    assert all(torch.equal(saved[k], params_ema[k]) for k in params_ema)  # the EMA weights, bare
    assert '`tiny_full_recipe.pth`' in (zoo / 'README.md').read_text()
    measured = model_zoo.verify(str(zoo), sets=('DICM', ), dataroot=str(tmp_path / 'sets'),
                                out=str(tmp_path / 'v1'), log=lambda *_: None)
    assert measured[0][2] == niqe['DICM'] and abs(measured[0][3] - niqe['DICM']) <= model_zoo.TOLERANCE

    index = model_zoo.read_index(str(zoo))
    index[0]['niqe']['DICM'] += 0.1
    (zoo / 'index.json').write_text(json.dumps(index))
    with pytest.raises(model_zoo.ZooError, match='tiny_full_recipe.pth DICM: published'):
        model_zoo.verify(str(zoo), sets=('DICM', ), dataroot=str(tmp_path / 'sets'), out=str(tmp_path / 'v2'),
                         log=lambda *_: None)
    (zoo / 'tiny_full_recipe.pth').write_bytes(b'changed')
    with pytest.raises(model_zoo.ZooError, match='sha256'):
        model_zoo.check_files(str(zoo))
    torch.save({'params': params}, checkpoint)
    with pytest.raises(model_zoo.ZooError, match='changed since'):
        model_zoo.add(str(study_dir), 'run', 'tiny_full_recipe', 'python make_it.py', zoo_dir=str(zoo))


@pytest.mark.parametrize('content, reason', [
    (None, r'is not valid JSON \(line \d+, column \d+: .*; truncated\?\)'),
    ('{"file": "x.pth"}', 'must hold a list of entries, got dict'),
])
def test_a_truncated_or_wrong_index_is_one_error_naming_the_file(tmp_path, capsys, monkeypatch, content, reason):
    from sclle_basicsr.study import model_zoo
    with open(osp.join(model_zoo.ZOO_DIR, model_zoo.INDEX)) as f:
        committed = f.read()
    (tmp_path / model_zoo.INDEX).write_text(committed[:len(committed) // 2] if content is None else content)
    with pytest.raises(model_zoo.ZooError, match=f'^{re.escape(str(tmp_path / model_zoo.INDEX))} {reason}$'):
        model_zoo.read_index(str(tmp_path))
    real_read_index = model_zoo.read_index  # the command line, reading that index: one line, exit status 1
    monkeypatch.setattr(model_zoo, 'read_index', lambda zoo_dir=None: real_read_index(str(tmp_path)))
    with pytest.raises(SystemExit) as exit_:
        model_zoo.main(['verify', '--max_images', '1'])
    assert re.fullmatch(f'error: {re.escape(str(tmp_path / model_zoo.INDEX))} {reason}', str(exit_.value.code))
