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
        export_model(path, 'torchscript', str(out))
    assert out.read_bytes() == b'previous export' and list(tmp_path.iterdir()) == [out]  # no partial file left


def test_export_errors(tmp_path, capsys):
    assert main(['--model_path', str(tmp_path / 'nope.pth'), '-o', str(tmp_path / 'x.onnx')]) == 2
    assert 'nope.pth' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(['--model_path', 'x', '--format', 'tflite', '-o', 'y'])


def test_onnx_bytes_in_memory_serve_every_shape(model, tmp_path, monkeypatch):
    """The graph the runtime backends use: built in memory (no file written), one session for every shape."""
    ort = pytest.importorskip('onnxruntime')
    from sclle_basicsr.export import onnx_bytes
    net, _ = model
    monkeypatch.chdir(tmp_path)
    graph = onnx_bytes(net)
    assert isinstance(graph, bytes) and list(tmp_path.iterdir()) == []
    assert net.training is False  # the export runs in eval mode and leaves the network's mode as it was
    session = ort.InferenceSession(graph, providers=['CPUExecutionProvider'])
    for shape in SHAPES:
        x = torch.rand(*shape)
        assert np.abs(session.run(None, {'input': x.numpy()})[0] - reference(net, x).numpy()).max() <= 1e-5
