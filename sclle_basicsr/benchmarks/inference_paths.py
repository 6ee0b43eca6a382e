"""The configurations the inference race runs, each as a function of a low-light image tensor.

``project`` configurations go through :func:`~sclle_basicsr.inference.enhance_tensor`; ``baseline`` is the
released code's eager forward; ``peer`` configurations call a runtime directly on the graph ``sclle-export``
writes, the yardstick the project's backends are measured against: ONNX Runtime on the dynamic-shape graph (a
session per input shape measured 0.97x of it), OpenVINO compiled for each input shape (5-10 % faster than the
dynamic-shape graph).  Tiled runs cut every configuration into the
same tiles.
"""
import os.path as osp

import numpy as np
import torch

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.inference import enhance_tensor, load_enhancer
from sclle_basicsr.inference.backends import import_runtime, native_bf16, openvino_native_bf16
from sclle_basicsr.inference.signal_stack import keep_signal_stack
from sclle_basicsr.inference.tiling import tile_ranges
from sclle_basicsr.utils.assets import asset_path

SIZES = {0.5: (612, 816), 1.0: (864, 1152), 4.0: (1728, 2304), 12.0: (3000, 4000)}
# name: (label, precision, kind); kind 'project' goes through enhance_tensor(backend=...), 'peer' calls the runtime
CONFIGS = {
    'eager': ('eager DCENet.forward (released code path)', 'fp32', 'baseline'),
    'torch-fp32': ('project torch fp32', 'fp32', 'project'),
    'torch-bf16': ('project torch bf16', 'bf16', 'project'),
    'onnxruntime-fp32': ('project onnxruntime fp32', 'fp32', 'project'),
    'openvino-fp32': ('project openvino fp32', 'fp32', 'project'),
    'openvino-bf16': ('project openvino bf16', 'bf16', 'project'),
    'peer-ort-fp32': ('peer ONNX Runtime fp32 (direct)', 'fp32', 'peer'),
    'peer-ov-fp32': ('peer OpenVINO fp32 (direct, static shape)', 'fp32', 'peer'),
    'peer-ov-bf16': ('peer OpenVINO bf16 (direct, static shape)', 'bf16', 'peer'),
}
_PEER_RUNTIMES = {'peer-ort-fp32': 'onnxruntime', 'peer-ov-fp32': 'openvino', 'peer-ov-bf16': 'openvino'}


def shape_for(mp):
    """(H, W) of a 4:3 image of about ``mp`` megapixels (the table's sizes for the standard ones)."""
    if mp in SIZES:
        return SIZES[mp]
    h = max(16, int(round((mp * 1e6 * 3 / 4)**0.5 / 8)) * 8)
    return h, h * 4 // 3


def low_light_image(mp):
    """A dark random image of about ``mp`` megapixels, the same for every configuration and run."""
    h, w = shape_for(mp)
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 0.4


def load_model(model_path=None):
    """``(network, description)``: the checkpoint (default: the released SCL-LLE weights) when it exists, else a
    seeded random DCENet (same cost)."""
    model_path = model_path or asset_path('weights', 'sclle_official.pth')
    if osp.isfile(model_path):
        return load_enhancer(model_path, 'cpu'), model_path
    torch.manual_seed(0)
    return DCENet().eval().requires_grad_(False), 'random DCENet (released weights not found)'


def tiled(fn, x, tile, pad=8):
    """``fn`` over the tiles of x (torch tensor or NumPy array, N x 3 x H x W): the same tiles for every config."""
    if not tile:
        return fn(x)
    _, _, h, w = x.shape
    out = torch.empty_like(x) if torch.is_tensor(x) else np.empty_like(x)
    for y0, y1, py0, py1 in tile_ranges(h, tile, pad):
        for x0, x1, px0, px1 in tile_ranges(w, tile, pad):
            part = x[:, :, py0:py1, px0:px1]
            res = fn(part.contiguous() if torch.is_tensor(part) else np.ascontiguousarray(part))
            out[:, :, y0:y1, x0:x1] = res[:, :, y0 - py0:y1 - py0, x0 - px0:x1 - px0]
    return out


def make_runner(name, net, graph, threads):
    """A function of the input tensor running configuration ``name`` (peers get a NumPy copy made beforehand)."""
    _, precision, kind = CONFIGS[name]
    if kind == 'baseline':
        def run(x, tile):
            with torch.no_grad():
                return tiled(net, x, tile)
        return run
    if kind == 'project':
        backend = name.rsplit('-', 1)[0]
        return lambda x, tile: enhance_tensor(net, x, tile=tile, precision=precision, backend=backend)
    if name == 'peer-ort-fp32':
        ort = import_runtime('onnxruntime')
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(graph, options, providers=['CPUExecutionProvider'])
        call = lambda a: session.run(None, {'input': a})[0]  # noqa: E731
    else:
        call = _openvino_per_shape(graph, precision, threads)
    return lambda x, tile: torch.from_numpy(tiled(call, x.numpy(), tile))


def _openvino_per_shape(graph, precision, threads):
    """OpenVINO at its fastest: a model compiled for each input shape it meets, kept (the race's warm-up compiles
    them, so the timed runs never do)."""
    ov = import_runtime('openvino')
    core = ov.Core()
    config = {'INFERENCE_NUM_THREADS': threads, 'INFERENCE_PRECISION_HINT': {'fp32': 'f32', 'bf16': 'bf16'}[precision]}
    requests = {}

    def call(a):
        if a.shape not in requests:
            model = core.read_model(graph)
            model.reshape(list(a.shape))
            with keep_signal_stack():  # as the project's backend does (signal_stack.py)
                requests[a.shape] = core.compile_model(model, 'CPU', config).create_infer_request()
        return requests[a.shape].infer({0: a})[0]
    return call


def unavailable_reason(name):
    """Why configuration ``name`` cannot run here (runtime missing, no native bf16), or ``None`` when it can."""
    backend = _PEER_RUNTIMES.get(name, name.rsplit('-', 1)[0])
    precision = CONFIGS[name][1]
    try:
        if backend in ('onnxruntime', 'openvino'):
            import_runtime(backend)
        if precision == 'bf16' and backend == 'openvino' and not openvino_native_bf16():
            return 'no native bf16 in OpenVINO on this CPU'
        if precision == 'bf16' and backend == 'torch' and not native_bf16():
            return 'no native bf16 (emulated: very slow)'
    except Exception as err:  # reported as the reason it is skipped
        return str(err)
    return None
