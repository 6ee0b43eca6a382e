"""``sclle-enhance`` on video files made here with PyAV: frames enhanced as images are, timestamps, rotation and
audio kept, folders mixing images and videos, the overwrite rules, atomic output, and bad or unusual inputs."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

from sclle_basicsr.enhance import main
from sclle_basicsr.enhance.video import VideoOptions, enhance_video
from sclle_basicsr.enhance.video_samples import pan_frames, synthetic_still, write_video
from sclle_basicsr.inference import Enhancer
from sclle_basicsr.utils.atomic_files import is_temporary

av = pytest.importorskip('av', reason='PyAV (the video extra) is not installed')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture(scope='module')
def enhancer(model_path):
    return Enhancer(model_path, device='cpu')


def scene(width=96, height=72, seed=0):
    """A dark still larger than frames of ``width`` x ``height``, for them to pan across."""
    return synthetic_still(width + 60, height + 40, seed)


def make_video(path, count=12, size=(96, 72), **kwargs):
    write_video(path, pan_frames(scene(*size), size, count), **kwargs)
    return str(path)


def decode(path):
    """``(frames as RGB uint8, pts, rotation, stream)`` of the first video stream."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = list(c.decode(stream))
        return ([f.to_ndarray(format='rgb24') for f in frames], [f.pts for f in frames],
                frames[0].rotation, (stream.time_base, stream.codec_context.name, stream.width, stream.height))


def audio_packets(path):
    """Codec name and payloads of the first audio stream's packets (identical bytes = remuxed, not re-encoded)."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None, []
        stream = c.streams.audio[0]
        return stream.codec_context.name, [bytes(p) for p in c.demux(stream) if p.size]


def run(args):
    return main([str(a) for a in args] + ['--quiet'])


def test_video_enhanced_with_audio_rate_and_rotation_kept(tmp_path, model_path, enhancer, capsys):
    src = make_video(tmp_path / 'night.mp4', count=12, rate=30, rotation=90, audio=('aac', 16000))
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path, '--video_crf', '0']) == 0
    assert '1 video(s) (12 frames' in capsys.readouterr().out
    out = tmp_path / 'out' / 'night.mp4'
    frames_in, pts_in, rot_in, (tb_in, *_) = decode(src)
    frames_out, pts_out, rot_out, (tb_out, codec, width, height) = decode(out)
    assert len(frames_out) == 12 and codec == 'h264' and (width, height) == (96, 72)
    assert [p * tb_out for p in pts_out] == [p * tb_in for p in pts_in]  # same presentation times
    assert rot_in == rot_out == 90
    # each frame is the image enhancement of the decoded input frame, up to the YUV round trip of lossless x264
    expected = np.stack([enhancer.enhance(f) for f in frames_in])
    err = np.abs(np.stack(frames_out).astype(int) - expected.astype(int)).mean(axis=(1, 2, 3))
    shifted = np.abs(np.stack(frames_out[1:]).astype(int) - expected[:-1].astype(int)).mean(axis=(1, 2, 3))
    assert err.max() < 2 and shifted.min() > 2 * err.max(), (err, shifted)  # the right frame, at its time
    assert audio_packets(out) == audio_packets(src) and audio_packets(out)[1]  # remuxed untouched


def test_folder_mixing_images_and_videos(tmp_path, model_path, enhancer, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    Image.fromarray(scene()[:40, :50]).save(src / 'a.png')
    make_video(src / 'clip.mkv', count=5, audio=('opus', 48000))
    make_video(src / 'old.avi', count=5, codec='mpeg4', audio=('pcm_u8', 8000))
    (src / 'notes.txt').write_text('hello')
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path, '--suffix', '_e']) == 0
    captured = capsys.readouterr()
    assert sorted(os.listdir(tmp_path / 'out')) == ['a_e.png', 'clip_e.mkv', 'old_e.mp4']
    assert '1 image(s) and 2 video(s) (10 frames' in captured.out and 'notes.txt' in captured.err
    assert np.array_equal(np.asarray(Image.open(tmp_path / 'out' / 'a_e.png')), enhancer.enhance(scene()[:40, :50]))
    assert audio_packets(tmp_path / 'out' / 'clip_e.mkv') == audio_packets(src / 'clip.mkv')
    # MP4 cannot hold 8-bit PCM: re-encoded to AAC, and said so
    assert 'pcm_u8' in captured.err and 're-encoded to AAC' in captured.err
    codec, packets = audio_packets(tmp_path / 'out' / 'old_e.mp4')
    assert codec == 'aac' and packets
    assert len(decode(tmp_path / 'out' / 'old_e.mp4')[0]) == 5


def test_existing_video_refused_unless_overwrite_or_skip(tmp_path, model_path, capsys):
    src = make_video(tmp_path / 'v.mp4', count=3)
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'v.mp4').write_bytes(b'mine')
    assert run(['-i', src, '-o', out, '--model_path', model_path]) == 2
    assert '1 output file(s) already exist' in capsys.readouterr().err and (out / 'v.mp4').read_bytes() == b'mine'
    assert run(['-i', src, '-o', out, '--model_path', model_path, '--skip_existing']) == 0
    assert (out / 'v.mp4').read_bytes() == b'mine'
    assert run(['-i', src, '-o', out, '--model_path', model_path, '--overwrite']) == 0
    assert len(decode(out / 'v.mp4')[0]) == 3 and os.listdir(out) == ['v.mp4']


def test_failure_mid_video_leaves_nothing_and_the_batch_goes_on(tmp_path, model_path, monkeypatch, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    make_video(src / 'a.mp4', count=9)
    make_video(src / 'b.mp4', count=9)
    from sclle_basicsr.enhance import video
    real = video.enhance_frames
    calls = []

    def failing(enhancer, rgb, smoother=None):  # the second batch of the first video fails
        calls.append(len(rgb))
        if len(calls) == 2:
            raise RuntimeError('enhancer crashed (simulated)')
        return real(enhancer, rgb, smoother)

    monkeypatch.setattr(video, 'enhance_frames', failing)
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path, '--video_batch', '4']) == 1
    assert os.listdir(tmp_path / 'out') == ['b.mp4']  # no partial a.mp4, no temporary left
    assert 'a.mp4' in capsys.readouterr().out and calls[:2] == [4, 4]


def test_sigkill_mid_video_leaves_no_partial_file(tmp_path, model_path):
    src = make_video(tmp_path / 'long.mp4', count=150, size=(160, 120))
    out = tmp_path / 'out'
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))
    cmd = [sys.executable, '-m', 'sclle_basicsr.enhance', '-i', src, '-o', str(out), '--model_path', model_path,
           '--quiet']
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (osp.isdir(out) and any(is_temporary(n) for n in os.listdir(out))):
        assert proc.poll() is None and time.monotonic() < deadline, 'the run ended before its temporary showed'
        time.sleep(0.005)
    time.sleep(0.5)  # mid-video: frames written into the temporary
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    names = os.listdir(out)
    assert 'long.mp4' not in names and len(names) == 1 and is_temporary(names[0])
    # the next run removes it and writes the whole video
    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert 'temporary file of an interrupted run' in rerun.stderr and os.listdir(out) == ['long.mp4']
    assert len(decode(out / 'long.mp4')[0]) == 150


def test_progress_counts_frames_and_precision_reaches_the_frames(tmp_path, model_path):
    src = make_video(tmp_path / 'v.mp4', count=7)
    updates = []

    class Bar:
        def __init__(self, total):
            updates.append(('total', total))

        def update(self, n):
            updates.append(n)

        def close(self):
            updates.append('closed')

    bf16 = Enhancer(model_path, device='cpu', precision='bf16', backend='torch')
    frames, notes, megapixels = enhance_video(bf16, src, str(tmp_path / 'o.mp4'), 'mp4', VideoOptions(batch=3),
                                              progress=Bar)
    assert frames == 7 and notes == [] and megapixels == pytest.approx(7 * 96 * 72 / 1e6)
    assert updates == [('total', 7), 3, 3, 1, 'closed']
    # by default, batches of about a megapixel
    from sclle_basicsr.enhance.video import auto_batch
    assert (auto_batch(96, 72), auto_batch(640, 360), auto_batch(1280, 720), auto_batch(3840, 2160)) == (8, 4, 1, 1)
    updates.clear()
    enhance_video(Enhancer(model_path, device='cpu'), src, str(tmp_path / 'p.mp4'), 'mp4', progress=Bar)
    assert updates == [('total', 7), 7, 'closed']


def test_usage_errors(tmp_path, model_path, capsys):
    src = make_video(tmp_path / 'v.mp4', count=2)
    assert run(['-i', src, '-o', tmp_path / 'out.mp4', '--model_path', model_path]) == 2
    assert 'ends in a video extension' in capsys.readouterr().err
    assert run(['-i', src, '-o', tmp_path / 'o', '--model_path', model_path, '--video_codec', 'nope264']) == 2
    assert '--video_codec nope264' in capsys.readouterr().err
    assert run(['-i', src, '-o', tmp_path / 'o', '--model_path', model_path, '--video_codec', 'aac']) == 2
    assert 'not a video one' in capsys.readouterr().err
    assert run(['-i', src, '-o', tmp_path / 'o', '--model_path', model_path, '--video_batch', '-1']) == 2
    assert not osp.exists(tmp_path / 'o')


def test_bdd_night_frames_video(tmp_path, capsys):
    """A clip made from the BDD100K night frames (real night driving content), enhanced with the released
    SCL-LLE weights: every frame brighter, the sound and the frame rate kept."""
    from conftest import require_asset
    folder = require_asset('lowlight_unlabelled', 'BDD_night')
    weights = require_asset('weights', 'sclle_official.pth')
    names = sorted(os.listdir(folder))[:3]
    frames = []
    for name in names:  # a short pan across each of three night frames, scaled to 320x180
        still = np.asarray(Image.open(osp.join(folder, name)).convert('RGB').resize((400, 225)))
        frames.extend(pan_frames(still, (320, 180), 4, step=8))
    src = tmp_path / 'bdd_night.mp4'
    write_video(src, frames, rate=Fraction(30000, 1001), audio=('aac', 44100))
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', weights]) == 0
    frames_in, pts_in, _, (tb_in, *_) = decode(src)
    frames_out, pts_out, _, (tb_out, *_) = decode(tmp_path / 'out' / 'bdd_night.mp4')
    assert len(frames_out) == 12 and [p * tb_out for p in pts_out] == [p * tb_in for p in pts_in]
    gain = [o.mean() / i.mean() for i, o in zip(frames_in, frames_out)]
    assert min(gain) > 1.5, gain
    assert audio_packets(tmp_path / 'out' / 'bdd_night.mp4') == audio_packets(src)
    with av.open(str(tmp_path / 'out' / 'bdd_night.mp4')) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)


def test_unreadable_and_truncated_videos_named_and_the_rest_processed(tmp_path, model_path, capsys):
    src = tmp_path / 'in'
    src.mkdir()
    make_video(src / 'good.mp4', count=4)
    (src / 'text.mp4').write_text('not a video')
    for name in ('cut.mkv', 'cut.mp4', 'cut_old.avi'):  # the first half of a whole file
        whole = make_video(tmp_path / name, count=30, codec='mpeg4' if name.endswith('avi') else 'libx264',
                           audio=None if name.endswith('avi') else ('aac', 16000))
        data = open(whole, 'rb').read()
        (src / name).write_bytes(data[:len(data) // 2])
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path]) == 1
    summary = capsys.readouterr().out
    assert os.listdir(tmp_path / 'out') == ['good.mp4']
    assert '1 video(s) (4 frames' in summary and '4 failed' in summary
    failed = dict(line.strip().split(': ', 2)[1:] for line in summary.splitlines() if line.startswith('  failed:'))
    assert set(failed) == {str(src / n) for n in ('text.mp4', 'cut.mkv', 'cut.mp4', 'cut_old.avi')}
    assert 'cannot read' in failed[str(src / 'text.mp4')] and 'cannot read' in failed[str(src / 'cut.mp4')]
    assert 'truncated' in failed[str(src / 'cut.mkv')] and 's its container states' in failed[str(src / 'cut.mkv')]
    avi = failed[str(src / 'cut_old.avi')]
    assert 'frames its index lists' in avi or 'cannot read' in avi


def test_no_audio_and_variable_frame_rate(tmp_path, model_path):
    pts = [0, 1, 2, 5, 6, 7, 15, 16, 30, 31]  # frames 40 ms to 560 ms apart (1/25 s units)
    src = make_video(tmp_path / 'vfr.mp4', count=10, pts=pts, time_base='1/25')
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path, '--video_batch', '3']) == 0
    out = tmp_path / 'out' / 'vfr.mp4'
    _, pts_in, _, (tb_in, *_) = decode(src)
    _, pts_out, _, (tb_out, *_) = decode(out)
    assert [p * tb_out for p in pts_out] == [p * tb_in for p in pts_in] == [Fraction(p, 25) for p in pts]
    assert audio_packets(out) == (None, [])


def test_odd_size_padded_to_even(tmp_path, model_path, enhancer, capsys):
    # yuv444p holds odd sizes; the yuv420p output cannot: one column and one row are repeated
    src = make_video(tmp_path / 'odd.mp4', count=3, size=(321, 241), pix_fmt='yuv444p', crf=0)
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path, '--video_crf', '0']) == 0
    assert 'padded to 322x242' in capsys.readouterr().err
    frames_in, *_ = decode(src)
    frames_out, _, _, (_, _, width, height) = decode(tmp_path / 'out' / 'odd.mp4')
    assert (width, height) == (322, 242)
    expected = enhancer.enhance(frames_in[0]).astype(int)
    assert np.abs(frames_out[0][:241, :321].astype(int) - expected).mean() < 2
    assert np.abs(frames_out[0][241, :321].astype(int) - expected[240]).mean() < 3  # the repeated row


def test_ten_bit_input_written_as_8_bit_and_said(tmp_path, model_path, capsys):
    src = make_video(tmp_path / 'ten.mkv', count=3, pix_fmt='yuv420p10le')
    with av.open(src) as c:
        assert c.streams.video[0].format.name == 'yuv420p10le'
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path]) == 0
    assert 'yuv420p10le input (10-bit) written as 8-bit yuv420p' in capsys.readouterr().err
    with av.open(str(tmp_path / 'out' / 'ten.mkv')) as c:
        assert c.streams.video[0].format.name == 'yuv420p' and len(list(c.decode(video=0))) == 3


def test_file_without_video_stream_named(tmp_path, model_path, capsys):
    src = tmp_path / 'sound.mkv'
    with av.open(str(src), 'w') as out:  # audio only
        stream = out.add_stream('aac', rate=16000, layout='mono')
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format='flt', layout='mono')
        frame.sample_rate, frame.pts = 16000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert run(['-i', src, '-o', tmp_path / 'out', '--model_path', model_path]) == 1
    assert f'{src} has no video stream' in capsys.readouterr().out
    assert os.listdir(tmp_path / 'out') == []


def test_flicker_figures_on_known_frames():
    from sclle_basicsr.enhance.flicker import flicker_figures
    frames = [np.full((4, 4, 3), v, np.uint8) for v in (100, 100, 200, 100)]
    fig = flicker_figures(frames)
    step = 100 / 255
    assert fig['brightness_change'] == pytest.approx(2 * step / 3, rel=1e-4)
    assert fig['brightness_change_rel'] == pytest.approx(2 * np.log(2) / 3, rel=1e-4)
    assert fig['temporal_diff'] == pytest.approx(2 * step / 3, rel=1e-4)
    assert fig['temporal_diff_rel'] == pytest.approx(fig['temporal_diff'] / (125 / 255), rel=1e-4)


def test_brightness_smoother_damps_flicker_keeps_steady_frames_and_restarts_at_cuts():
    from sclle_basicsr.enhance.temporal import BrightnessSmoother
    frames = torch.full((6, 3, 4, 4), 0.3)
    assert BrightnessSmoother(0.0)(frames) is frames
    assert torch.allclose(BrightnessSmoother(0.8)(frames.clone()), frames)
    flicker = torch.tensor([0.3, 0.36, 0.3, 0.24, 0.3, 0.36]).view(6, 1, 1, 1).expand(6, 3, 4, 4).contiguous()
    smoothed = BrightnessSmoother(0.8)(flicker.clone()).mean((1, 2, 3))
    assert (smoothed[1:] - smoothed[:-1]).abs().max() < 0.3 * (flicker[1:] - flicker[:-1]).abs().max()
    smoother = BrightnessSmoother(0.8)
    smoother(torch.full((3, 3, 4, 4), 0.1))
    cut = torch.full((2, 3, 4, 4), 0.5)  # five times brighter: a new scene, left as it is
    assert torch.equal(smoother(cut.clone()), cut)
    with pytest.raises(ValueError, match='alpha'):
        BrightnessSmoother(1.0)


def test_temporal_smoothing_reduces_a_synthetic_flicker_and_zero_is_off(tmp_path, model_path, enhancer, capsys,
                                                                         monkeypatch):
    from sclle_basicsr.enhance.flicker import SCENARIOS, measure_clip
    clip = list(pan_frames(scene(), (96, 72), 16, gains=SCENARIOS['flicker'](16)))
    found = measure_clip(enhancer, clip, str(tmp_path), 'flicker', alphas=(0.0, 0.8))
    (_, out0), (_, out8) = found[0.0], found[0.8]
    assert out8['brightness_change_rel'] < 0.5 * out0['brightness_change_rel']
    assert out8['brightness'] == pytest.approx(out0['brightness'], rel=0.05)  # the look kept
    # --temporal_smoothing 0 is the run without the option, frame for frame (the frames handed to the encoder:
    # x264's threads may encode the same frames to different bytes on a loaded machine)
    from sclle_basicsr.enhance import video
    real, handed = video.enhance_frames, []

    def recording(enhancer, rgb, smoother=None):
        handed.append(real(enhancer, rgb, smoother))
        return handed[-1]

    monkeypatch.setattr(video, 'enhance_frames', recording)
    src = make_video(tmp_path / 'v.mp4', count=6)
    assert run(['-i', src, '-o', tmp_path / 'a', '--model_path', model_path]) == 0
    a, handed[:] = np.concatenate(handed), []
    assert run(['-i', src, '-o', tmp_path / 'b', '--model_path', model_path, '--temporal_smoothing', '0']) == 0
    assert len(a) == 6 and np.array_equal(a, np.concatenate(handed))
    assert run(['-i', src, '-o', tmp_path / 'c', '--model_path', model_path, '--temporal_smoothing', '1']) == 2
    assert '--temporal_smoothing 1.0: ALPHA must lie in [0, 1)' in capsys.readouterr().err


def test_measure_flicker_script(tmp_path, model_path, capsys):
    from conftest import load_script
    load_script('measure_flicker').main(['--model_path', model_path, '--stills', '1', '--frames', '5',
                                         '--size', '64x36', '--alphas', '0', '0.8', '--threads', '1',
                                         '--json', str(tmp_path / 'f.json')])
    out = capsys.readouterr().out
    assert 'synthetic pan' in out and '| flicker | 0.8 |' in out
    import json
    rows = json.loads((tmp_path / 'f.json').read_text())['synthetic pan']
    assert [(r['scenario'], r['alpha']) for r in rows][:2] == [('steady', 0.0), ('steady', 0.8)]


def test_benchmark_video_script(tmp_path, model_path, capsys):
    from conftest import load_script
    load_script('benchmark_video').main(['--model_path', model_path, '--sizes', '96x54', '--frames', '3',
                                         '--long_frames', '5', '--threads', '1', '--json', str(tmp_path / 'b.json')])
    out = capsys.readouterr().out
    assert 'CPU: ' in out and 'flags' in out and '| 96x54 | fp32 |' in out and '| 96x54 | bf16 |' in out
    import json
    rows = json.loads((tmp_path / 'b.json').read_text())['rows']
    assert [(r['precision'], r['frames'], r['batch']) for r in rows] == [('fp32', 3, 3), ('fp32', 5, 5),
                                                                          ('bf16', 3, 3)]
    assert all(r['fps'] > 0 and r['network_fps'] >= r['fps'] for r in rows)


def test_make_video_figure_script(tmp_path, capsys):
    from conftest import load_script, require_asset
    require_asset('lowlight_unlabelled', 'BDD_night')
    require_asset('weights', 'sclle_official.pth')
    out = tmp_path / 'fig.jpg'
    load_script('make_video_figure').main(['--size', '160x90', '--out', str(out)])
    assert 0 < out.stat().st_size < 200_000 and Image.open(out).size == (2 * 160 + 8, 90)
    assert 'mean brightness' in capsys.readouterr().out
