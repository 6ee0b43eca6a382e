"""``sclle-enhance`` on real files made here: EXIF, ICC, 16-bit, alpha, grayscale, bad files, overwrites, atomicity."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from sclle_basicsr.enhance import batch, main
from sclle_basicsr.enhance.image_reading import read_image
from sclle_basicsr.enhance.image_writing import encode_image
from sclle_basicsr.inference import Enhancer
from sclle_basicsr.utils import atomic_files
from sclle_basicsr.utils.atomic_files import write_atomic

try:
    from PIL import ImageCms
    ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile('sRGB')).tobytes()
except Exception:  # Pillow built without littlecms: any bytes do for a round trip
    ICC = b'\x00\x00\x02\x4cfake-icc-profile' + bytes(100)


@pytest.fixture(scope='module')
def enhancer(model_path):
    return Enhancer(model_path, device='cpu')


def rand_rgb(h=18, w=24, seed=0, high=120):
    return np.random.default_rng(seed).integers(0, high, (h, w, 3), dtype=np.uint8)


def run(args):
    return main([str(a) for a in args] + ['--quiet'])


def test_folder_with_non_image_and_unreadable(tmp_path, model_path, capsys, enhancer):
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    rgb = rand_rgb()
    Image.fromarray(rgb).save(src / 'a.png')
    Image.fromarray(rand_rgb(seed=1)).save(src / 'b.jpg', quality=95)
    (src / 'notes.txt').write_text('hello')
    good = src / 'c.jpg'
    Image.fromarray(rand_rgb(seed=2)).save(good, quality=95)
    (src / 'truncated.jpg').write_bytes(good.read_bytes()[:200])
    code = run(['-i', src, '-o', out, '--model_path', model_path])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(os.listdir(out)) == ['a.png', 'b.jpg', 'c.jpg']
    assert 'notes.txt' in captured.err and 'truncated.jpg' in captured.out
    assert '3 image(s) written' in captured.out and '1 failed' in captured.out
    assert np.array_equal(np.asarray(Image.open(out / 'a.png')), enhancer.enhance(rgb))


def test_exit_codes_and_missing_model(tmp_path, model_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    Image.fromarray(rand_rgb()).save(src / 'a.png')
    assert run(['-i', src, '-o', tmp_path / 'o1', '--model_path', model_path]) == 0
    assert run(['-i', src, '-o', tmp_path / 'o2']) == 2
    err = capsys.readouterr().err
    assert 'no --model_path' in err and 'sclle_official.pth' in err
    assert run(['-i', tmp_path / 'missing', '-o', tmp_path / 'o3', '--model_path', model_path]) == 2
    assert run(['-i', src, '-o', tmp_path / 'o4', '--model_path', tmp_path / 'nope.pth']) == 2
    assert 'nope.pth' in capsys.readouterr().err
    assert run(['-i', src, '-o', tmp_path / 'o5', '--model_path', model_path, '--precision', 'fp16',
                '--device', 'cpu']) == 2


def test_single_file_suffix_ext_and_recursive(tmp_path, model_path):
    src = tmp_path / 'in'
    (src / 'sub').mkdir(parents=True)
    Image.fromarray(rand_rgb()).save(src / 'a.bmp')
    Image.fromarray(rand_rgb(seed=3)).save(src / 'sub' / 'b.png')
    assert run(['-i', src / 'a.bmp', '-o', tmp_path / 'o1', '--model_path', model_path, '--suffix', '_x']) == 0
    assert os.listdir(tmp_path / 'o1') == ['a_x.png']  # auto: bmp -> png
    assert run(['-i', src, '-o', tmp_path / 'o2', '--model_path', model_path, '--recursive', '--ext', 'jpg']) == 0
    assert sorted(os.listdir(tmp_path / 'o2')) == ['a.jpg', 'sub']
    assert os.listdir(tmp_path / 'o2' / 'sub') == ['b.jpg']
    assert Image.open(tmp_path / 'o2' / 'sub' / 'b.jpg').format == 'JPEG'
    assert run(['-i', src, '-o', tmp_path / 'o3', '--model_path', model_path, '--tile', '64']) == 0
    assert os.listdir(tmp_path / 'o3') == ['a.png']


def test_refuses_to_overwrite_inputs(tmp_path, model_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    Image.fromarray(rand_rgb()).save(src / 'a.png')
    before = (src / 'a.png').read_bytes()
    assert run(['-i', src, '-o', src, '--model_path', model_path]) == 2  # a.png "exists" as an output
    assert 'already exist' in capsys.readouterr().err
    assert run(['-i', src, '-o', src, '--model_path', model_path, '--overwrite']) == 1
    assert 'refusing to write' in capsys.readouterr().out
    assert (src / 'a.png').read_bytes() == before
    assert run(['-i', src, '-o', src, '--model_path', model_path, '--suffix', '_enh']) == 0
    assert sorted(os.listdir(src)) == ['a.png', 'a_enh.png']


def test_exif_orientation_applied(tmp_path, model_path, enhancer):
    rgb = rand_rgb(10, 16)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    src = tmp_path / 'in'
    src.mkdir()
    Image.fromarray(rgb).save(src / 'r.png', exif=exif.tobytes())
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path]) == 0
    out = np.asarray(Image.open(tmp_path / 'out' / 'r.png'))
    upright = np.rot90(rgb, -1)
    assert out.shape == (16, 10, 3)
    assert np.array_equal(out, enhancer.enhance(np.ascontiguousarray(upright)))


def test_16bit_png_and_tiff_stay_16bit_with_icc(tmp_path, model_path, enhancer):
    import cv2
    rgb16 = (rand_rgb().astype(np.uint16) * 257 + 3)
    src = tmp_path / 'in'
    src.mkdir()
    assert cv2.imwrite(str(src / 'd.png'), rgb16[:, :, ::-1])
    data, _ = encode_image(rgb16, 'tif', ICC)
    (src / 't.tif').write_bytes(data)
    data, _ = encode_image(rgb16, 'png', ICC)
    (src / 'i.png').write_bytes(data)
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path]) == 0
    expected = enhancer.enhance(rgb16)
    for name, icc in (('d.png', None), ('t.tif', ICC), ('i.png', ICC)):
        img = read_image(str(tmp_path / 'out' / name))
        assert img.pixels.dtype == np.uint16, name
        assert np.array_equal(img.pixels, expected), name
        assert img.icc == icc, name
    with Image.open(tmp_path / 'out' / 'i.png') as im:  # PIL sees the injected iCCP chunk too
        assert im.info.get('icc_profile') == ICC


def test_8bit_icc_alpha_and_grayscale(tmp_path, model_path, enhancer):
    rng = np.random.default_rng(5)
    rgb = rand_rgb()
    alpha = rng.integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    gray = rgb[:, :, 1]
    gray16 = gray.astype(np.uint16) * 257
    src = tmp_path / 'in'
    src.mkdir()
    Image.fromarray(rgb).save(src / 'icc.jpg', icc_profile=ICC, quality=95)
    Image.fromarray(np.dstack([rgb, alpha])).save(src / 'rgba.png')
    Image.fromarray(np.dstack([gray, alpha])).save(src / 'la.png')
    Image.fromarray(gray).save(src / 'g.png')
    Image.fromarray(gray16).save(src / 'g16.png')
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path]) == 0
    out = tmp_path / 'out'
    with Image.open(out / 'icc.jpg') as im:
        assert im.info.get('icc_profile') == ICC
    with Image.open(out / 'rgba.png') as im:
        assert im.mode == 'RGBA'
        a = np.asarray(im)
    assert np.array_equal(a[:, :, 3], alpha) and np.array_equal(a[:, :, :3], enhancer.enhance(rgb))
    with Image.open(out / 'la.png') as im:
        assert im.mode == 'LA'
        la = np.asarray(im)
    assert np.array_equal(la[:, :, 1], alpha) and np.array_equal(la[:, :, 0], enhancer.enhance(gray))
    with Image.open(out / 'g.png') as im:
        assert im.mode == 'L' and np.array_equal(np.asarray(im), enhancer.enhance(gray))
    g16 = read_image(str(out / 'g16.png')).pixels
    assert g16.dtype == np.uint16 and g16.ndim == 2 and np.array_equal(g16, enhancer.enhance(gray16))


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / 'x.png'
    target.write_bytes(b'old')

    def boom(*args, **kwargs):
        raise OSError('disk full (simulated)')

    monkeypatch.setattr(atomic_files.os, 'fsync', boom)
    with pytest.raises(OSError, match='simulated'):
        write_atomic(str(target), b'new contents')
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['x.png']
    monkeypatch.undo()
    write_atomic(str(target), b'new contents')
    assert target.read_bytes() == b'new contents' and os.listdir(tmp_path) == ['x.png']


def test_failure_during_save_in_cli_keeps_going(tmp_path, model_path, monkeypatch, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    Image.fromarray(rand_rgb()).save(src / 'a.png')
    Image.fromarray(rand_rgb(seed=1)).save(src / 'b.png')
    real = batch.encode_image

    def flaky(pixels, fmt, icc=None):
        data, notes = real(pixels, fmt, icc)
        if flaky.calls == 0:
            flaky.calls += 1
            raise OSError('encoder crashed (simulated)')
        return data, notes

    flaky.calls = 0
    monkeypatch.setattr(batch, 'encode_image', flaky)
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path]) == 1
    assert os.listdir(tmp_path / 'out') == ['b.png']
    assert 'simulated' in capsys.readouterr().out


def test_module_entry_point(tmp_path, model_path):
    src = tmp_path / 'a.png'
    Image.fromarray(rand_rgb()).save(src)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, '-m', 'sclle_basicsr.enhance', '-i', str(src), '-o', str(tmp_path / 'o'),
                           '--model_path', model_path, '--quiet'], cwd=repo, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert '1 image(s) written' in proc.stdout


def test_existing_outputs_refused_unless_overwrite_or_skip(tmp_path, model_path, capsys, enhancer):
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    out.mkdir()
    Image.fromarray(rand_rgb()).save(src / 'a.png')
    Image.fromarray(rand_rgb(seed=1)).save(src / 'b.png')
    (out / 'a.png').write_bytes(b'mine')
    assert run(['-i', src, '-o', out, '--model_path', model_path]) == 2
    err = capsys.readouterr().err
    assert f'1 output file(s) already exist, e.g. {out / "a.png"}' in err and '--overwrite' in err
    assert os.listdir(out) == ['a.png'] and (out / 'a.png').read_bytes() == b'mine'  # nothing touched

    assert run(['-i', src, '-o', out, '--model_path', model_path, '--skip_existing']) == 0
    assert '1 image(s) written' in capsys.readouterr().out.replace('1 existing output(s) kept', '') \
        and (out / 'a.png').read_bytes() == b'mine'
    assert np.array_equal(np.asarray(Image.open(out / 'b.png')), enhancer.enhance(rand_rgb(seed=1)))

    assert run(['-i', src, '-o', out, '--model_path', model_path, '--overwrite']) == 0
    assert '2 image(s) written' in capsys.readouterr().out
    assert np.array_equal(np.asarray(Image.open(out / 'a.png')), enhancer.enhance(rand_rgb()))
    with pytest.raises(SystemExit) as exc:  # argparse: the two are exclusive
        run(['-i', src, '-o', out, '--model_path', model_path, '--overwrite', '--skip_existing'])
    assert exc.value.code == 2


def test_skip_existing_is_counted_in_the_summary(tmp_path, model_path, capsys):
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    for seed in range(3):
        Image.fromarray(rand_rgb(seed=seed)).save(src / f'{seed}.png')
    assert run(['-i', src / '0.png', '-o', out, '--model_path', model_path]) == 0
    capsys.readouterr()
    assert run(['-i', src, '-o', out, '--model_path', model_path, '--skip_existing']) == 0
    summary = capsys.readouterr().out
    assert '2 image(s) written' in summary and '1 existing output(s) kept' in summary


def test_usage_errors_output_file_and_tiny_tiles(tmp_path, model_path, capsys):
    src = tmp_path / 'a.png'
    Image.fromarray(rand_rgb()).save(src)
    a_file = tmp_path / 'out.png'
    a_file.write_bytes(b'user data')
    assert run(['-i', src, '-o', a_file, '--model_path', model_path]) == 2
    assert f'-o {a_file} is an existing file' in capsys.readouterr().err
    assert a_file.read_bytes() == b'user data'
    for tile, pad, smallest in (('1', '8', 64), ('63', '8', 64), ('70', '40', 81)):
        assert run(['-i', src, '-o', tmp_path / 'o', '--model_path', model_path, '--tile', tile,
                    '--tile_pad', pad]) == 2
        err = capsys.readouterr().err
        assert f'--tile {tile} is too small' in err and f'--tile {smallest} or more' in err
    assert not (tmp_path / 'o').exists()
    assert run(['-i', src, '-o', tmp_path / 'o', '--model_path', model_path, '--tile', '64']) == 0


def test_float_images_out_of_range_or_non_finite_are_refused(tmp_path, model_path, capsys):
    tifffile = pytest.importorskip('tifffile')
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    good = np.random.default_rng(0).uniform(0, 0.4, (16, 20, 3)).astype(np.float32)
    tifffile.imwrite(src / 'good.tif', good, photometric='rgb')
    tifffile.imwrite(src / 'hdr.tif', good * 255, photometric='rgb')
    almost = good.copy()
    almost[0, 0, 0] = 1.005  # within the tolerance: clipped
    tifffile.imwrite(src / 'almost.tif', almost, photometric='rgb')
    nan = good.copy()
    nan[3, 4, 1] = np.nan
    tifffile.imwrite(src / 'nan.tif', nan, photometric='rgb')
    assert run(['-i', src, '-o', out, '--model_path', model_path]) == 1
    stdout = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['almost.tif', 'good.tif']
    assert re.search(r'failed: .*hdr\.tif: cannot enhance .*hdr\.tif: float pixels must lie in \[0, 1\], '
                     r'got values from [0-9.]+ to 10[0-9.]+', stdout)
    assert re.search(r'failed: .*nan\.tif: cannot enhance .*nan\.tif: the image has 1 non-finite pixel value\(s\)',
                     stdout)


def two_inputs(tmp_path):
    src = tmp_path / 'in'
    src.mkdir()
    Image.fromarray(rand_rgb()).save(src / 'a.png')
    Image.fromarray(rand_rgb(seed=1)).save(src / 'b.png')
    return src, tmp_path / 'out'


def patch_first_enhance(monkeypatch, first):
    """``Enhancer.enhance`` returns ``first(enhance)`` for the first image (``enhance()`` gives the real result)."""
    real, calls = Enhancer.enhance, []

    def patched(self, img):
        calls.append(img)
        return first(lambda: real(self, img)) if len(calls) == 1 else real(self, img)

    monkeypatch.setattr(Enhancer, 'enhance', patched)


def test_non_finite_model_output_is_never_written(tmp_path, model_path, capsys, monkeypatch):
    src, out = two_inputs(tmp_path)

    def nan_result(enhance):
        result = enhance()
        result[0, 0, 0] = np.nan
        return result

    patch_first_enhance(monkeypatch, nan_result)
    assert run(['-i', src, '-o', out, '--model_path', model_path]) == 1
    stdout = capsys.readouterr().out
    assert os.listdir(out) == ['b.png']
    assert re.search(r'failed: .*a\.png: the model gave 1 NaN or infinite value\(s\); nothing written', stdout)


def test_nan_weights_write_nothing(tmp_path, capsys, nan_weights):
    weights = nan_weights
    src = tmp_path / 'a.png'
    Image.fromarray(rand_rgb()).save(src)
    code = run(['-i', src, '-o', tmp_path / 'out', '--model_path', weights])
    captured = capsys.readouterr()
    assert code == 2  # refused when the weights are loaded, before any image
    assert f'{weights}: non-finite weights (NaN or Inf) in e_conv7.bias' in captured.out + captured.err
    assert not (tmp_path / 'out').exists() or os.listdir(tmp_path / 'out') == []


def test_stale_temporaries_of_dead_runs_are_removed(tmp_path, model_path, capsys):
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    (out / 'sub').mkdir(parents=True)
    Image.fromarray(rand_rgb()).save(src / 'a.png')
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True,
                          text=True).stdout.strip()
    stale = [out / f'.a.png.sclle-tmp-{dead}-k2x9_q1z', out / 'sub' / f'.b.png.sclle-tmp-{dead}-abc']
    live = out / f'.c.png.sclle-tmp-{os.getpid()}-abc'  # another run still writing: kept
    user = [out / '.a.png.tmp', out / 'notes.sclle-tmp-1-x', out / 'b.png']
    for path in stale + [live] + user:
        path.write_bytes(b'partial')
    assert run(['-i', src, '-o', out, '--model_path', model_path]) == 0
    err = capsys.readouterr().err
    for path in stale:
        assert not path.exists() and f'removed {path} (temporary file of an interrupted run)' in err
    for path in [live] + user:
        assert path.read_bytes() == b'partial'
    assert (out / 'a.png').exists()


def test_enhancer_errors_are_per_image_failures(tmp_path, model_path, capsys, monkeypatch):
    """An error the Enhancer raises for one image (e.g. its input checks) names that file; the rest go on."""
    src, out = two_inputs(tmp_path)

    def refuse(enhance):
        raise ValueError('pixel values outside [0, 1] (simulated)')

    patch_first_enhance(monkeypatch, refuse)
    assert run(['-i', src, '-o', out, '--model_path', model_path]) == 1
    stdout = capsys.readouterr().out
    assert os.listdir(out) == ['b.png']
    assert f'failed: {src / "a.png"}: pixel values outside [0, 1] (simulated)' in stdout


def test_an_output_named_like_an_image_is_refused_not_made_a_folder(tmp_path, model_path, capsys):
    src = tmp_path / 'a.png'
    Image.fromarray(rand_rgb()).save(src)
    assert run(['-i', src, '-o', tmp_path / 'x.jpg', '--model_path', model_path]) == 2
    assert capsys.readouterr().err == (f'sclle-enhance: error: -o {tmp_path / "x.jpg"} ends in an image extension, '
                                       'but -o names the output folder (each output keeps its input\'s name, plus '
                                       '--suffix); give a folder, e.g. -o enhanced/\n')
    assert not (tmp_path / 'x.jpg').exists()
    (tmp_path / 'y.jpg').mkdir()  # a folder that is really called so is a folder
    assert run(['-i', src, '-o', tmp_path / 'y.jpg', '--model_path', model_path]) == 0
    assert os.listdir(tmp_path / 'y.jpg') == ['a.png']


def test_empty_images_are_named(tmp_path, model_path, capsys, enhancer):
    src = tmp_path / 'in'
    src.mkdir()
    Image.fromarray(rand_rgb()).save(src / 'good.png')
    (src / 'empty.png').write_bytes(b'')
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path]) == 1
    assert f'failed: {src / "empty.png"}: cannot read image {src / "empty.png"}: the file is empty (0 bytes)' in \
        capsys.readouterr().out
    assert os.listdir(tmp_path / 'out') == ['good.png']
    for shape in ((0, 0, 3), (0, 5), (4, 0, 4)):
        with pytest.raises(ValueError, match=r'the image is empty \(\d+x\d+ pixels, batch 1\): nothing to enhance'):
            enhancer.enhance(np.zeros(shape, np.uint8))
    assert enhancer.enhance(np.zeros((1, 1, 3), np.uint8)).shape == (1, 1, 3)  # small is fine


def test_recursive_enters_each_real_folder_once(tmp_path, model_path, capsys):
    """A link to a folder above it (a loop) and a second link to one folder add nothing; the walk ends at once."""
    src = tmp_path / 'in'
    (src / 'sub').mkdir(parents=True)
    Image.fromarray(rand_rgb()).save(src / 'a.png')
    Image.fromarray(rand_rgb(seed=1)).save(src / 'sub' / 'b.png')
    (src / 'sub' / 'loop').symlink_to(src, target_is_directory=True)
    (src / 'sub' / 'again').symlink_to(src / 'sub', target_is_directory=True)
    (src / 'linked').symlink_to(tmp_path / 'elsewhere', target_is_directory=True)  # a real folder outside: kept
    (tmp_path / 'elsewhere').mkdir()
    Image.fromarray(rand_rgb(seed=2)).save(tmp_path / 'elsewhere' / 'c.png')
    out = tmp_path / 'out'
    assert run(['-i', src, '-o', out, '--model_path', model_path, '--recursive']) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob('*.png'))
    assert written == ['a.png', 'linked/c.png', 'sub/b.png']
    assert '3 image(s) written' in capsys.readouterr().out


@pytest.mark.parametrize('mode', ['plain', 'skip_existing', 'overwrite'])
def test_an_output_another_run_creates_meanwhile_is_not_replaced(tmp_path, model_path, capsys, monkeypatch, mode):
    """Between the up-front check and the write, another run writes ``b.png``: it is kept as that run wrote it
    (a failure naming it, or counted as kept with --skip_existing) unless --overwrite asks to replace it."""
    src, out = tmp_path / 'in', tmp_path / 'out'
    src.mkdir()
    for name, seed in (('a.png', 0), ('b.png', 1)):
        Image.fromarray(rand_rgb(seed=seed)).save(src / name)
    real_encode = batch.encode_image

    def encode_while_another_run_writes(pixels, fmt, icc=None):
        if not (out / 'b.png').exists():
            (out / 'b.png').write_bytes(b'written by the other run')
        return real_encode(pixels, fmt, icc)

    monkeypatch.setattr(batch, 'encode_image', encode_while_another_run_writes)
    extra = [] if mode == 'plain' else [f'--{mode}']
    code = run(['-i', src, '-o', out, '--model_path', model_path, *extra])
    stdout = capsys.readouterr().out
    assert sorted(os.listdir(out)) == ['a.png', 'b.png']
    if mode == 'overwrite':
        assert code == 0 and (out / 'b.png').read_bytes() != b'written by the other run'
        return
    assert (out / 'b.png').read_bytes() == b'written by the other run'
    if mode == 'plain':
        assert code == 1 and f'failed: {src / "b.png"}: output {out / "b.png"} was created by another process ' \
            'during this run; not replaced' in stdout
    else:
        assert code == 0 and '1 image(s) written' in stdout and '1 existing output(s) kept' in stdout


def test_publishing_without_replacing_is_exclusive(tmp_path):
    write_atomic(tmp_path / 'x', b'first', replace=False)
    with pytest.raises(FileExistsError, match='not replaced'):
        write_atomic(tmp_path / 'x', b'second', replace=False)
    assert (tmp_path / 'x').read_bytes() == b'first' and os.listdir(tmp_path) == ['x']
