"""scripts/split_exposures.py and sclle_basicsr.data.exposure_split: bands, links, no overwrite, errors."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from conftest import load_script

from sclle_basicsr.data.exposure_split import classify_level, mean_grey_level, split_exposures
from sclle_basicsr.utils.assets import assets_root

ASSETS = assets_root()
SICE = osp.join(ASSETS, 'sice_part1_subset')

# grey value -> expected category with the default bands (under < 0.25, positive 0.35-0.65, over > 0.75)
LEVELS = {'a_dark': (20, 'under'), 'b_dim': (63, 'under'), 'c_mid': (128, 'positive'), 'd_edge': (90, 'positive'),
          'e_between': (75, None), 'f_bright': (200, 'over'), 'g_white': (250, 'over'), 'h_between': (180, None)}


def make_images(folder):
    os.makedirs(folder, exist_ok=True)
    for name, (grey, _) in LEVELS.items():
        img = np.full((12, 10, 3), grey, np.uint8)
        img[0, 0] = (grey + 1, grey, grey - 1)  # not perfectly flat, same mean grey up to rounding
        cv2.imwrite(osp.join(folder, f'{name}.png'), img)
    with open(osp.join(folder, 'notes.txt'), 'w') as f:
        f.write('ignored')
    return str(folder)


def listing(folder):
    return sorted(os.listdir(folder)) if osp.isdir(folder) else []


def test_bands_and_links(tmp_path):
    src = make_images(tmp_path / 'in')
    (tmp_path / 'in' / 'broken.jpg').write_bytes(b'\xff\xd8 not really')
    out = tmp_path / 'out'
    result = split_exposures(src, str(out))
    for category in ('under', 'positive', 'over'):
        expected = sorted(f'{n}.png' for n, (_, c) in LEVELS.items() if c == category)
        assert listing(out / category) == expected
        assert all(osp.islink(out / category / n) for n in expected)
        assert all(os.readlink(out / category / n) == osp.join(osp.abspath(src), n) for n in expected)
    assert result.counts == {'positive': 2, 'under': 2, 'over': 2}
    assert sorted(osp.basename(p) for p in result.between) == ['e_between.png', 'h_between.png']
    assert [osp.basename(p) for p in result.unreadable] == ['broken.jpg']
    assert abs(result.levels[osp.join(src, 'c_mid.png')] - 128 / 255) < 1e-3


def test_no_overwrite_copy_and_custom_bands(tmp_path):
    src = make_images(tmp_path / 'in')
    out = tmp_path / 'out'
    os.makedirs(out / 'positive')
    (out / 'positive' / 'c_mid.png').write_text('mine')  # must survive
    result = split_exposures(src, str(out), copy=True)
    assert (out / 'positive' / 'c_mid.png').read_text() == 'mine'
    assert result.existing['positive'] == 1 and result.written['positive'] == 1
    assert not osp.islink(out / 'positive' / 'd_edge.png') and osp.getsize(out / 'positive' / 'd_edge.png') > 0
    again = split_exposures(src, str(out), copy=True)  # a second run writes nothing
    assert sum(again.written.values()) == 0 and sum(again.existing.values()) == 6
    custom = split_exposures(src, str(tmp_path / 'c'), under_max=0.1, positive_range=(0.2, 0.8), over_min=0.9,
                             dry_run=True)
    assert custom.counts == {'under': 1, 'positive': 6, 'over': 1} and not osp.exists(tmp_path / 'c')
    assert classify_level(0.25) is None and classify_level(0.35) == 'positive' and classify_level(0.7501) == 'over'


def test_a_stopped_copy_leaves_no_file_the_next_run_would_keep(tmp_path, monkeypatch):
    import shutil
    src = make_images(tmp_path / 'in')
    out = tmp_path / 'out'
    copy = shutil.copyfileobj

    def stopped(fin, fout):
        fout.write(fin.read(10))
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, 'copyfileobj', stopped)
    with pytest.raises(KeyboardInterrupt):
        split_exposures(src, str(out), copy=True)
    assert not [n for c in ('under', 'positive', 'over') for n in listing(out / c)]
    # what a killed run (no exception handler ran) leaves: a temporary of a process that no longer exists
    (out / 'positive' / '.c_mid.png.sclle-tmp-999999999-x1').write_bytes(b'\x89PNG half')
    monkeypatch.setattr(shutil, 'copyfileobj', copy)
    result = split_exposures(src, str(out), copy=True)
    assert sum(result.existing.values()) == 0 and sum(result.written.values()) == 6
    assert listing(out / 'positive') == ['c_mid.png', 'd_edge.png']
    assert (out / 'positive' / 'c_mid.png').read_bytes() == (tmp_path / 'in' / 'c_mid.png').read_bytes()


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere'):
        split_exposures(str(tmp_path / 'nowhere'), str(tmp_path / 'out'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(ValueError, match='No image file'):
        split_exposures(str(tmp_path / 'empty'), str(tmp_path / 'out'))
    with pytest.raises(ValueError, match='thresholds'):
        split_exposures(str(tmp_path / 'empty'), str(tmp_path / 'out'), under_max=0.5)
    with pytest.raises(OSError, match='cannot decode'):
        (tmp_path / 'bad.png').write_bytes(b'xx')
        mean_grey_level(str(tmp_path / 'bad.png'))


def test_cli(tmp_path, capsys):  # in-process: a subprocess would pay the torch/BasicSR import again (~10 s)
    main = load_script('split_exposures').main
    src = make_images(tmp_path / 'in')
    assert main([src, str(tmp_path / 'out'), '--over', '0.7']) == 0
    out = capsys.readouterr().out
    assert 'positive: 2' in out and 'under: 2' in out and 'over: 3' in out
    assert 'between bands (not used): 1' in out
    assert osp.islink(tmp_path / 'out' / 'over' / 'h_between.png')
    assert main([src, str(tmp_path / 'copied'), '--copy', '--positive', '0.3', '0.6']) == 0
    assert not osp.islink(tmp_path / 'copied' / 'positive' / 'c_mid.png')
    capsys.readouterr()
    assert main([str(tmp_path / 'empty'), str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error:') and 'empty' in err


@pytest.mark.skipif(not osp.isdir(SICE), reason=f'sice_part1_subset not found under {ASSETS} (set SCLLE_ASSETS)')
def test_sice_subset_counts(tmp_path):
    result = split_exposures(SICE, str(tmp_path / 'split'))
    print(result.summary())
    assert result.counts == {'positive': 116, 'under': 146, 'over': 65}  # the assets README's figures
    assert len(result.between) == 400 - 146 - 116 - 65 and not result.unreadable
    assert len(listing(tmp_path / 'split' / 'under')) == 146
