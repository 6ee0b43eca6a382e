"""What a benchmark ran on: CPU, its flags, thread count and library versions, plus a matmul rate as a yardstick.

Both benchmarks put this in their reports, so that results from different machines are not compared blindly.
"""
import os
import platform
import time

import torch

from sclle_basicsr.inference.backends import cpu_flags, cpu_name, import_runtime

FLAGS_SHOWN = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_tile', 'amx_bf16')


def describe_machine(threads):
    """CPU name, the flags in ``FLAGS_SHOWN`` it has, cores, ``threads`` used, Python, OS and torch versions."""
    flags = cpu_flags()
    return {'cpu': cpu_name(), 'flags': [f for f in FLAGS_SHOWN if f in flags], 'os_cpus': os.cpu_count(),
            'threads': threads, 'python': platform.python_version(), 'platform': platform.platform(),
            'torch': torch.__version__}


def runtime_version(module):
    """Version of an optional runtime (``onnxruntime``, ``openvino``); ``None`` when not installed."""
    try:
        return import_runtime(module).__version__
    except Exception:  # not installed, or broken on import: no version to report
        return None


def matmul_gflops(dtype, n, repeats=2):
    """GFLOP/s of an ``n`` x ``n`` matrix product in ``dtype``, best of ``repeats`` after a warm-up."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9
