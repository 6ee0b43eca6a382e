"""The ONNX graph the CPU runtimes run and ``sclle-export`` writes: DCENet's forward with dynamic batch, height and
width, built in memory."""
import io
import warnings

import torch


class ImageOnly(torch.nn.Module):
    """DCENet forward returning the enhanced image only (one output, no keyword arguments)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def onnx_bytes(net, opset=17):
    """The ONNX graph of ``net`` (a DCENet or wrapper) as bytes, in memory: dynamic batch, height and width.

    The ONNX Runtime and OpenVINO backends build their sessions from these bytes; ``sclle-export`` writes them.
    """
    net = getattr(net, 'module', net)
    module = ImageOnly(net).train(net.training)  # exported in eval mode, then the wrapper's (= the net's) mode is back
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript-based exporter's deprecation notice
        warnings.simplefilter('ignore')
        torch.onnx.export(module, (torch.rand(1, 3, 64, 64), ), buffer, input_names=['input'],
                          output_names=['enhanced'], opset_version=opset, dynamo=False, do_constant_folding=True,
                          dynamic_axes={'input': {0: 'batch', 2: 'height', 3: 'width'},
                                        'enhanced': {0: 'batch', 2: 'height', 3: 'width'}})
    return buffer.getvalue()
