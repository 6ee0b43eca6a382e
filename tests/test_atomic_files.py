"""Whole-or-nothing writes and the clean-up of temporaries left by killed processes."""
import os
import stat
import subprocess
import sys

import pytest

from sclle_basicsr.utils.atomic_files import atomic_open, is_temporary, remove_stale_temporaries, write_atomic


def dead_pid():
    return int(subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True,
                              text=True).stdout)


def test_write_atomic_bytes_and_text_with_usual_permissions(tmp_path):
    write_atomic(str(tmp_path / 'a.bin'), b'\x00\x01')
    write_atomic(str(tmp_path / 'a.md'), 'line\n')
    assert (tmp_path / 'a.bin').read_bytes() == b'\x00\x01' and (tmp_path / 'a.md').read_text() == 'line\n'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / 'a.md').st_mode) == 0o666 & ~umask
    assert sorted(os.listdir(tmp_path)) == ['a.bin', 'a.md']


@pytest.mark.parametrize('error', [OSError('disk full (simulated)'), KeyboardInterrupt()])
def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, error):
    target = tmp_path / 'report.csv'
    target.write_text('old')
    with pytest.raises(type(error)):
        with atomic_open(str(target), 'w') as f:
            f.write('half of the new')
            assert any(is_temporary(n) for n in os.listdir(tmp_path))
            raise error
    assert target.read_text() == 'old' and os.listdir(tmp_path) == ['report.csv']
    with pytest.raises(ValueError, match='whole files'):
        with atomic_open(str(target), 'a'):
            pass


def test_only_temporaries_of_dead_processes_are_removed(tmp_path):
    (tmp_path / 'sub').mkdir()
    dead = dead_pid()
    stale = [tmp_path / f'.a.png.sclle-tmp-{dead}-abc_123', tmp_path / 'sub' / f'.b.csv.sclle-tmp-{dead}-x']
    kept = [tmp_path / f'.c.png.sclle-tmp-{os.getpid()}-abc',  # a live process is still writing it
            tmp_path / f'a.png.sclle-tmp-{dead}-abc',  # not hidden: not ours
            tmp_path / f'.a.png.sclle-tmp-{dead}-ABC',  # not a mkstemp suffix
            tmp_path / '.a.png.tmp', tmp_path / 'a.png']
    for path in stale + kept:
        path.write_bytes(b'x')
    assert sorted(remove_stale_temporaries(str(tmp_path))) == sorted(str(p) for p in stale)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in stale)
