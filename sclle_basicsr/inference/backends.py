"""Backends that run an enhancer network on one float32 ``(N, 3, H, W)`` image: PyTorch, ONNX Runtime, OpenVINO.

The runtimes take and return contiguous NumPy arrays (``takes_numpy``), so that the checks and tiling around them
run no PyTorch operator: PyTorch's OpenMP threads, spinning after a parallel operator, would take the cores the
runtime's threads need (measured: 0.84x the runtime called directly, at 4 MP in 384-pixel tiles on 2 cores).

* ``torch``: the module's own forward (autocast for bf16 / fp16); the path for CUDA and for validation during
  training, where the weights change between calls.
* ``onnxruntime`` and ``openvino`` (CPU): the graph written by :func:`.onnx_graph.onnx_bytes`, in memory,
  with dynamic batch, height and width, so that one session / compiled model serves every image and tile shape
  (OpenVINO also compiles the shapes that come again for themselves: :class:`OpenVINOBackend`).  They are built
  once per network and precision and rebuilt only when its weights change.

``auto`` picks, from ``scripts/benchmark_inference.py``: CUDA -> torch; CPU fp32 -> onnxruntime, else openvino, else
torch; CPU bf16 -> openvino when the CPU has native bf16 (OpenVINO lists ``BF16`` in its capabilities), else torch.
It takes a runtime only when its whole chain is there: the runtime package (ONNX Runtime with its CPU provider in
``get_available_providers()``, which ``onnxruntime-gpu`` has too) and ``onnx``, which torch's ONNX exporter needs to
write the graph.  The runtimes are extras (``[cpu]``, ``[gpu]``, ``[openvino]``); when none fits, ``auto`` runs torch
and logs one line saying why and what to install.  On CUDA it runs torch even beside ``onnxruntime-gpu``: its CUDA
provider is not used by this package.
"""
import collections
import contextlib
import functools
import importlib
import logging
import platform
import warnings
import weakref

import numpy as np
import torch

from sclle_basicsr.inference.onnx_graph import onnx_bytes
from sclle_basicsr.inference.signal_stack import keep_signal_stack
from sclle_basicsr.utils.checkpoints import check_weights

PRECISIONS = ('fp32', 'bf16', 'fp16')
BACKENDS = ('auto', 'torch', 'onnxruntime', 'openvino')
RUNTIME_INSTALL = {  # backend -> the command that installs its runtime with what it needs
    'onnxruntime': "pip install 'sclle-basicsr[cpu]' (or [gpu] for onnxruntime-gpu; never both)",
    'openvino': "pip install 'sclle-basicsr[openvino]'",
}
_AUTO_CPU_ORDER = {'fp32': ('onnxruntime', 'openvino'), 'bf16': ('openvino', )}
_TORCH_DTYPES = {'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


class BackendUnavailable(RuntimeError):
    """A backend whose runtime package is not installed (the message says how to install it)."""


def resolve_device(device='auto'):
    """``'auto'`` -> CUDA when available, else CPU; ``'cuda'`` without CUDA is an error."""
    device = 'auto' if device is None else str(device)
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dev = torch.device(device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'device "{device}" requested but CUDA is not available (torch {torch.__version__})')
    return dev


def _cpuinfo_field(name):
    """The value of the first ``name`` line of ``/proc/cpuinfo``; ``None`` where there is none."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(name):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags():
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is none)."""
    return set((_cpuinfo_field('flags') or '').split())


def native_bf16():
    """Whether the CPU computes bf16 itself (AVX512-BF16 or AMX-BF16 in ``/proc/cpuinfo``); without, bf16 autocast
    is emulated and much slower than fp32.  ``False`` where ``/proc/cpuinfo`` does not exist."""
    return bool(cpu_flags() & {'avx512_bf16', 'amx_bf16'})


def cuda_bf16_support():
    """``'native'`` (compute capability 8.0 or newer), ``'emulated'`` (PyTorch runs bf16 kernels slowly, e.g. on a
    V100 or T4) or ``'none'`` for the current GPU (``torch.cuda.is_bf16_supported``)."""
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return 'native'
    return 'emulated' if torch.cuda.is_bf16_supported(including_emulation=True) else 'none'


def cpu_name():
    """The CPU's model name from ``/proc/cpuinfo``, else what :mod:`platform` knows."""
    return _cpuinfo_field('model name') or platform.processor() or 'unknown'


def import_runtime(name):
    """The runtime module of backend ``name``; :class:`BackendUnavailable` saying how to install it when missing."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise BackendUnavailable(f'backend "{name}" needs the {name} package, which is not installed: '
                                 f'{RUNTIME_INSTALL[name]}') from err


def runtime_problem(name):
    """Why backend ``name`` cannot run on the CPU here, and the command that fixes it; ``None`` when it can.

    Its chain: the runtime package; for ONNX Runtime its CPU provider (``onnxruntime-gpu`` has one too); and the
    ``onnx`` package, without which torch's ONNX exporter cannot write the graph both runtimes read.
    """
    try:
        module = importlib.import_module(name)
    except ImportError:
        return f'{name} is not installed', RUNTIME_INSTALL[name]
    if name == 'onnxruntime':
        providers = module.get_available_providers()
        if 'CPUExecutionProvider' not in providers:
            return (f'onnxruntime {module.__version__} has no CPUExecutionProvider (it lists {", ".join(providers)})',
                    RUNTIME_INSTALL[name])
    try:
        importlib.import_module('onnx')
    except ImportError:
        return f'{name} needs the onnx package for torch\'s ONNX exporter, which is not installed', 'pip install onnx'
    return None


_log = logging.getLogger(__name__)
_FALLBACKS_SAID = set()


def _say_fallback(precision, problems):
    """One log line, once per process and cause: ``auto`` runs torch on the CPU, why, and what would be faster."""
    line = (f'backend auto runs torch on the CPU ({precision}): ' + '; '.join(p for _, (p, _) in problems) +
            f'. For faster inference: {problems[0][1][1]}')
    if line not in _FALLBACKS_SAID:
        _FALLBACKS_SAID.add(line)
        _log.warning(line)


def _auto_cpu(precision):
    """The first runtime of :data:`_AUTO_CPU_ORDER` whose chain is complete; torch (said once) when none is."""
    problems = []
    for name in _AUTO_CPU_ORDER.get(precision, ()):
        problem = runtime_problem(name)
        if problem is None:
            if precision != 'bf16' or openvino_native_bf16():
                return name
        else:
            problems.append((name, problem))
    if problems and (precision != 'bf16' or native_bf16()):  # without native bf16 no runtime would be faster
        _say_fallback(precision, problems)
    return 'torch'


@functools.lru_cache(maxsize=None)
def openvino_native_bf16():
    """Whether OpenVINO runs bf16 natively on this CPU (AVX512-BF16 / AMX); without, its bf16 hint runs fp32."""
    ov = import_runtime('openvino')
    return 'BF16' in ov.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')


def select_backend(backend, device, precision):
    """The backend name that runs ``precision`` on ``device``: ``auto`` resolved, explicit names checked."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {", ".join(PRECISIONS)}, got "{precision}"')
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {", ".join(BACKENDS)}, got "{backend}"')
    if precision == 'fp16' and device.type != 'cuda':
        raise ValueError('precision "fp16" needs a CUDA device (CPU convolutions in fp16 are not supported); '
                         'use "bf16" or "fp32" on CPU')
    if backend == 'auto':
        return 'torch' if device.type != 'cpu' else _auto_cpu(precision)
    if backend != 'torch' and device.type != 'cpu':
        raise ValueError(f'backend "{backend}" runs on the CPU only; use backend "torch" on {device}')
    if backend == 'onnxruntime' and precision != 'fp32':
        raise ValueError(f'backend "onnxruntime" runs fp32 only (its CPU provider has no {precision} convolutions); '
                         'use backend "openvino" or "torch" for bf16')
    if backend != 'torch':
        problem = runtime_problem(backend)
        if problem is not None:
            raise BackendUnavailable(f'backend "{backend}" cannot run here: {problem[0]}. Install: {problem[1]}')
    return backend


# ----------------------------------------------------------------------------------------------------------------
# torch


def _denormals_flushed():
    """Whether the calling thread flushes denormals (probed: a subnormal times 1 reads back as 0).

    Probed in NumPy, on this thread's floating-point unit: a PyTorch operator next to a runtime call wakes PyTorch's
    thread pool, which then competes with the runtime's threads.
    """
    return float(np.float32(1e-39) * np.float32(1.0)) == 0.0


@contextlib.contextmanager
def flush_denormals(enabled=True):
    """Flush denormals to zero inside the block and restore the previous setting after it.

    The runtimes run inside it too: ONNX Runtime (``session.set_denormal_as_zero``) and OpenVINO leave the calling
    thread flushing denormals, which would silently change every float computation the caller makes afterwards.
    """
    if not enabled:
        yield
        return
    previous = _denormals_flushed()
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(previous)


class TorchBackend:
    """The module's forward in eager PyTorch: channels-last activations, autocast for bf16 / fp16."""

    name = 'torch'
    takes_numpy = False

    def __init__(self, net, device, precision):
        self.net = getattr(net, 'module', net)
        self.device = device
        self.dtype = _TORCH_DTYPES[precision]
        if precision == 'bf16' and device.type == 'cpu' and not native_bf16():
            warnings.warn('this CPU has no native bf16 (no AVX512-BF16 / AMX): bf16 convolutions are emulated and '
                          'much slower than fp32; use precision "fp32" here', RuntimeWarning, stacklevel=3)
        if precision == 'bf16' and device.type == 'cuda':
            support = cuda_bf16_support()
            gpu = torch.cuda.get_device_name(device)
            if support == 'none':
                raise ValueError(f'precision "bf16": {gpu} cannot run bf16; use "fp16" or "fp32"')
            if support == 'emulated':
                warnings.warn(f'{gpu} has no native bf16 (compute capability < 8.0): PyTorch emulates it, slowly; '
                              'use precision "fp16" there', RuntimeWarning, stacklevel=3)

    def __call__(self, x):
        cpu = self.device.type == 'cpu'
        with flush_denormals(cpu), torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            return self.net(x.contiguous(memory_format=torch.channels_last)).float()


# ----------------------------------------------------------------------------------------------------------------
# ONNX Runtime and OpenVINO, on the exported graph


class OnnxRuntimeBackend:
    """An ONNX Runtime CPU session on the exported graph (fp32), ``threads`` intra-op threads."""

    name = 'onnxruntime'

    def __init__(self, onnx_model, precision, threads):
        ort = import_runtime('onnxruntime')
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry('session.set_denormal_as_zero', '1')
        with flush_denormals():
            self.session = ort.InferenceSession(onnx_model, options, providers=['CPUExecutionProvider'])
        self.input_name = self.session.get_inputs()[0].name

    takes_numpy = True

    def __call__(self, x):
        with flush_denormals():
            return self.session.run(None, {self.input_name: x})[0]


class OpenVINOBackend:
    """OpenVINO CPU models compiled from the exported graph; bf16 through its inference precision hint.

    A model compiled for one static input shape runs 5-10 % faster than the dynamic-shape one and holds less
    memory (about 390 against 650 bytes per pixel in bf16), but compiling takes 0.1-0.2 s, more than a one-off
    image of a few megapixels gains.  So a shape's first pass runs on the dynamic model, and a shape that comes
    again (the tiles of an image, a folder of same-sized photos) is compiled for itself: the last
    :attr:`STATIC_SHAPES` shapes are kept, older ones only while they hold under :attr:`KEPT_PIXELS` pixels between
    them.  ``compiles`` counts the static compilations.
    """

    name = 'openvino'
    takes_numpy = True
    STATIC_SHAPES = 4
    KEPT_PIXELS = 2**20  # beyond the newest static model: about 0.4 GB in bf16
    _SEEN = 16  # shapes remembered as seen once

    def __init__(self, onnx_model, precision, threads):
        ov = import_runtime('openvino')
        if precision == 'bf16' and not openvino_native_bf16():
            raise ValueError('backend "openvino" with precision "bf16" needs a CPU with native bf16 (AVX512-BF16 / '
                             'AMX); this one has none and OpenVINO would run fp32. Use precision "fp32"')
        self._core = ov.Core()
        self._config = {'INFERENCE_NUM_THREADS': threads, 'PERFORMANCE_HINT': 'LATENCY',
                        'INFERENCE_PRECISION_HINT': {'fp32': 'f32', 'bf16': 'bf16'}[precision]}
        self._model = self._core.read_model(onnx_model)
        self._dynamic = self._compile(self._model)
        self._static = collections.OrderedDict()  # shape -> (compiled model, infer request), newest last
        self._seen = collections.OrderedDict()
        self.compiles = 0

    def _compile(self, model):
        with flush_denormals(), keep_signal_stack():  # see signal_stack.py: a released model could leave it dangling
            compiled = self._core.compile_model(model, 'CPU', self._config)
            return compiled, compiled.create_infer_request()

    def _request(self, shape):
        """The infer request for ``shape``: its static model when there is one or the shape comes again (compiled
        then, the dynamic model's buffers released), else the dynamic model's."""
        if shape in self._static:
            self._static.move_to_end(shape)
            return self._static[shape][1]
        if self._seen.pop(shape, None) is None:
            self._seen[shape] = True
            while len(self._seen) > self._SEEN:
                self._seen.popitem(last=False)
            return self._dynamic[1]
        model = self._model.clone()
        model.reshape(list(shape))
        self._static[shape] = self._compile(model)
        self.compiles += 1
        self._dynamic[0].release_memory()
        while len(self._static) > 1 and (len(self._static) > self.STATIC_SHAPES or sum(
                n * h * w for n, _, h, w in list(self._static)[:-1]) > self.KEPT_PIXELS):
            self._static.popitem(last=False)
        return self._static[shape][1]

    def __call__(self, x):
        with flush_denormals():
            return self._request(tuple(x.shape)).infer({0: x}, share_inputs=True)[0]


_RUNTIMES = {'onnxruntime': OnnxRuntimeBackend, 'openvino': OpenVINOBackend}
_BUILT = weakref.WeakKeyDictionary()  # network -> {(backend, precision, threads): (weights snapshot, backend)}


def backend_for(net, name, device, precision):
    """A callable running ``net`` with backend ``name`` (as resolved by :func:`select_backend`).

    Non-finite weights are refused for every backend (OpenVINO's ReLU turns NaN into 0: a wrong, finite image).
    Runtime backends are cached per network, precision and thread count, and rebuilt when the weights changed
    (compared with a copy taken when built: a network is small, and training changes weights in place).
    """
    net = getattr(net, 'module', net)
    check_weights(net.state_dict().items())
    if name == 'torch':
        return TorchBackend(net, device, precision)

    threads = torch.get_num_threads()
    key = (name, precision, threads)
    state = [t.detach() for t in net.state_dict().values()]
    entries = _BUILT.setdefault(net, {})
    entry = entries.get(key)
    if entry is None or not all(torch.equal(a, b) for a, b in zip(entry[0], state)):
        entry = ([t.clone() for t in state], _RUNTIMES[name](onnx_bytes(net), precision, threads))
        entries[key] = entry
    return entry[1]
