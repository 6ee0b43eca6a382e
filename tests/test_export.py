"""``sclle-export``: ONNX (checked with onnxruntime) and TorchScript match PyTorch at several shapes."""
import warnings

import numpy as np
import pytest
import torch

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.export import export_model, main


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    torch.manual_seed(0)
    net = DCENet().eval()
    with torch.no_grad():
        net.e_conv7.weight.mul_(4)
    path = tmp_path_factory.mktemp('model') / 'net_g.pth'
    torch.save({'params_ema': net.state_dict()}, path)
    return net, str(path)


SHAPES = [(1, 3, 64, 64), (2, 3, 37, 53), (1, 3, 20, 90)]  # batch, height and width all differ from the export


def reference(net, x):
    with torch.no_grad():
        return net(x)


def test_onnx_matches_pytorch(model, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnx')
    net, path = model
    out = tmp_path / 'dcenet.onnx'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        assert main(['--model_path', path, '--format', 'onnx', '-o', str(out)]) == 0
    session = ort.InferenceSession(str(out), providers=['CPUExecutionProvider'])
    for shape in SHAPES:
        x = torch.rand(*shape)
        (y, ) = session.run(None, {'input': x.numpy()})
        assert y.shape == shape
        assert np.abs(y - reference(net, x).numpy()).max() <= 1e-5


def test_torchscript_matches_pytorch(model, tmp_path):
    net, path = model
    out = tmp_path / 'dcenet.pt'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        export_model(path, 'torchscript', str(out))
        scripted = torch.jit.load(str(out))
    for shape in SHAPES:
        x = torch.rand(*shape)
        with torch.no_grad():
            assert (scripted(x) - reference(net, x)).abs().max() <= 1e-5


def test_failed_export_keeps_the_previous_file(model, tmp_path, monkeypatch):
    _, path = model
    out = tmp_path / 'dcenet.pt'
    out.write_bytes(b'previous export')

    def fail(module, f):
        f.write(b'half a model')
        raise RuntimeError('disk full')

    monkeypatch.setattr(torch.jit, 'save', fail)
    with warnings.catch_warnings(), pytest.raises(RuntimeError, match='disk full'):
        warnings.simplefilter('ignore')
        export_model(path, 'torchscript', str(out), overwrite=True)
    assert out.read_bytes() == b'previous export' and list(tmp_path.iterdir()) == [out]  # no partial file left


def export_quietly(argv):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return main(argv)


def test_an_existing_file_is_replaced_only_with_overwrite(model, tmp_path, capsys):
    _, path = model
    out = tmp_path / 'sclle.onnx'
    out.write_bytes(b'an earlier export')
    assert export_quietly(['--model_path', path, '-o', str(out)]) == 2
    assert capsys.readouterr().err == f'sclle-export: error: -o {out} exists; pass --overwrite to replace it\n'
    assert out.read_bytes() == b'an earlier export' and list(tmp_path.iterdir()) == [out]
    assert export_quietly(['--model_path', path, '-o', str(out), '--overwrite']) == 0
    assert out.read_bytes()[:2] != b'an' and out.stat().st_size > 10_000


def test_a_file_created_during_the_export_is_not_replaced(model, tmp_path, monkeypatch, capsys):
    """Two exports to one path: the one that finishes second does not overwrite the first's file."""
    from sclle_basicsr import export
    _, path = model
    out = tmp_path / 'sclle.onnx'
    real = export.onnx_bytes

    def meanwhile(*args, **kwargs):
        out.write_bytes(b'the other export')
        return real(*args, **kwargs)

    monkeypatch.setattr(export, 'onnx_bytes', meanwhile)
    assert export_quietly(['--model_path', path, '-o', str(out)]) == 2
    assert 'was created by another process during the export; not replaced' in capsys.readouterr().err
    assert out.read_bytes() == b'the other export' and list(tmp_path.iterdir()) == [out]


def test_a_folder_is_refused(model, tmp_path, capsys):
    _, path = model
    assert export_quietly(['--model_path', path, '-o', str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f'sclle-export: error: -o {tmp_path} is a folder; -o names the model file '
                                       f'to write, e.g. {tmp_path / "sclle.onnx"}\n')


@pytest.mark.parametrize('fault', ['read-only', 'full'])
def test_a_read_only_folder_or_a_full_disk_is_one_line_and_writes_nothing(model, tmp_path, monkeypatch, capsys, fault):
    """Simulated (the tests may run as root, for whom no folder is read-only): creating the temporary file fails
    with EACCES, or writing it with ENOSPC."""
    import errno
    import os

    from sclle_basicsr.utils import atomic_files
    _, path = model
    out = tmp_path / 'sub' / 'sclle.onnx'
    if fault == 'read-only':
        def mkstemp(dir, prefix):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.path.join(dir, prefix + 'x'))
        monkeypatch.setattr(atomic_files.tempfile, 'mkstemp', mkstemp)
    else:
        real_fsync = os.fsync

        def fsync(fd):  # a full disk often shows only when the data is flushed to it
            real_fsync(fd)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(atomic_files.os, 'fsync', fsync)
    assert export_quietly(['--model_path', path, '-o', str(out)]) == 1
    err = capsys.readouterr().err
    reason = f'Permission denied ({out.parent})' if fault == 'read-only' else 'No space left on device'
    assert err == f'sclle-export: error: cannot write -o {out}: {reason}; nothing written\n'
    assert os.listdir(out.parent) == []


def test_export_errors(tmp_path, capsys):
    assert main(['--model_path', str(tmp_path / 'nope.pth'), '-o', str(tmp_path / 'x.onnx')]) == 2
    assert 'nope.pth' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['--model_path', 'x', '--format', 'tflite', '-o', 'y'])


def test_onnx_bytes_in_memory_serve_every_shape(model, tmp_path, monkeypatch):
    """The graph the runtime backends use: built in memory (no file written), one session for every shape."""
    ort = pytest.importorskip('onnxruntime')
    from sclle_basicsr.inference.onnx_graph import onnx_bytes
    net, _ = model
    monkeypatch.chdir(tmp_path)
    graph = onnx_bytes(net)
    assert isinstance(graph, bytes) and list(tmp_path.iterdir()) == []
    assert net.training is False  # the export runs in eval mode and leaves the network's mode as it was
    session = ort.InferenceSession(graph, providers=['CPUExecutionProvider'])
    for shape in SHAPES:
        x = torch.rand(*shape)
        assert np.abs(session.run(None, {'input': x.numpy()})[0] - reference(net, x).numpy()).max() <= 1e-5
