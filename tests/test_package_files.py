"""The files the package ships (option files, model zoo): the package reaches the checkout's only copies, and copying
the option files out never overwrites one.  That a wheel holds them is checked by .ci/wheel_install.sh."""
import os
import os.path as osp

import pytest

from sclle_basicsr.utils import package_files
from sclle_basicsr.utils.assets import REPO_ROOT


def test_the_package_reaches_every_option_file_and_the_zoo_of_the_checkout():
    on_disk = sorted(f'{d}/{n}' for d in os.listdir(osp.join(REPO_ROOT, 'options'))
                     for n in os.listdir(osp.join(REPO_ROOT, 'options', d)) if n.endswith('.yml'))
    assert package_files.option_files() == on_disk and 'train/train_SCLLLE_demo.yml' in on_disk
    assert osp.samefile(package_files.OPTIONS_DIR, osp.join(REPO_ROOT, 'options'))  # one copy, not two
    assert osp.samefile(package_files.ZOO_DIR, osp.join(REPO_ROOT, 'model_zoo'))


def test_option_file_names_the_shipped_ones_when_missing():
    assert osp.isfile(package_files.option_file('test/test_SCLLLE_demo.yml'))
    with pytest.raises(FileNotFoundError, match='no such option file in the package; it ships test/test_SCLLLE_demo'):
        package_files.option_file('test/nope.yml')


def test_copy_options_writes_all_then_keeps_what_is_there(tmp_path, capsys):
    dest = tmp_path / 'options'
    assert package_files.main(['copy-options', str(dest)]) == 0
    names = package_files.option_files()
    assert f'{len(names)} option file(s) written' in capsys.readouterr().out
    for name in names:
        with open(osp.join(package_files.OPTIONS_DIR, name), 'rb') as f:
            assert (dest / name).read_bytes() == f.read()
    assert package_files.copy_options(str(dest)) == []  # identical files: nothing to do
    edited = dest / names[0]
    edited.write_text('my edit\n')
    (dest / names[1]).unlink()
    with pytest.raises(FileExistsError, match=f'{edited} already exist.*nothing was copied'):
        package_files.copy_options(str(dest))
    assert edited.read_text() == 'my edit\n' and not (dest / names[1]).exists()  # nothing written, nothing lost
    with pytest.raises(SystemExit, match='error: .*differ'):
        package_files.main(['copy-options', str(dest)])


def test_list_prints_absolute_paths(capsys):
    assert package_files.main(['list']) == 0
    lines = capsys.readouterr().out.split()
    assert lines == [osp.join(package_files.OPTIONS_DIR, n) for n in package_files.option_files()]
    assert all(osp.isfile(p) for p in lines)
