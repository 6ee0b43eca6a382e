"""The brightness sweep: each L_c hinge against under-/over-exposed negatives moves the way its name says, and the
script draws and records it on the study's data."""
import json

import pytest
import torch

from sclle_basicsr.archs.vgg_arch import FrozenVGG16Features
from sclle_basicsr.study import brightness_sweep as bs


def flat(value, n=2, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (value + 0.02 * torch.rand(n, 3, size, size, generator=g)).clamp(0, 1)


def test_mean_hinges_fall_against_under_and_rise_against_over(tmp_path):
    vgg = FrozenVGG16Features(layers=('relu1_2', 'relu2_2', 'relu4_3'), weights_format='random')
    result = bs.sweep(vgg, flat(0.1), pos=flat(0.5, seed=1), under=flat(0.08, seed=2), over=flat(0.9, seed=3),
                      gains=(1.0, 2.0, 4.0, 10.0))
    brightness = result['brightness']
    assert brightness == sorted(brightness) and brightness[0] == pytest.approx(0.11, abs=0.01)
    under, over = result['L_c mean vs under'], result['L_c mean vs over']
    assert under == sorted(under, reverse=True) and under[0] > under[-1]
    assert over == sorted(over) and over[-1] > over[0]
    assert result['L_fr'][0] == pytest.approx(0.0, abs=1e-6) and result['L_fr'][-1] > 0
    bs.plot_sweep(dict(result, enhancers={'a': 0.3, 'b': 0.31}), str(tmp_path / 'sweep.png'))
    bs.write_sweep(result, str(tmp_path / 'sweep.json'))
    assert (tmp_path / 'sweep.png').stat().st_size > 0
    assert json.loads((tmp_path / 'sweep.json').read_text())['gain'] == [1.0, 2.0, 4.0, 10.0]


def test_script_on_the_study_data(tmp_path, capsys):
    from conftest import load_script, require_asset
    require_asset('sice_part1_subset')
    require_asset('lowlight_unlabelled', 'BDD_night')
    require_asset('weights', 'vgg16_imagenet_caffe_bgr_features.pth')
    from sclle_basicsr.archs.dcenet_arch import DCENet
    torch.save(DCENet().state_dict(), tmp_path / 'net.pth')
    load_script('brightness_sweep').main(['--out', str(tmp_path / 'sweep'), '--count', '2', '--size', '48',
                                          '--weights', f'mine={tmp_path / "net.pth"}'])
    out = capsys.readouterr().out
    assert 'L_c Gram vs under' in out and 'mine: mean output brightness' in out
    assert (tmp_path / 'sweep' / 'sweep.png').is_file()
    with pytest.raises(SystemExit, match='NAME=CHECKPOINT'):
        load_script('brightness_sweep').main(['--out', str(tmp_path / 'sweep'), '--weights', 'nofile'])
