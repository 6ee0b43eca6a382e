"""Race the project's inference backends against the runtimes they wrap, side by side in one run.

Configurations, at about 0.5, 1, 4 and 12 megapixels (4:3 images; above --tile-above MP every one runs tiled, pad 8:
untiled, one runtime holds about 1 GB (OpenVINO fp32) to 1.4 GB (ONNX Runtime) per megapixel, and the race holds six):

  eager          the released code's path: DCENet's forward in eager PyTorch, fp32, NCHW
  torch-fp32/bf16    the project: enhance_tensor(backend='torch')
  onnxruntime-fp32   the project: enhance_tensor(backend='onnxruntime')
  openvino-fp32/bf16 the project: enhance_tensor(backend='openvino')
  peer-ort-fp32      peer: an ONNX Runtime session on the graph sclle-export writes, called directly on NumPy
  peer-ov-fp32/bf16  peer: OpenVINO compiled from the same graph, called directly (bf16: inference precision hint)

All run round-robin (one of each, then again) so that load from other processes hits them alike; the minimum over
repeats is reported in MP/s with the ratio to the best peer of the same precision, the PSNR of reduced precision
against torch fp32, and the peak RSS of a fresh process that loads the model and runs the configuration once
(whole process, so one path's allocator caches cannot inflate another's). Every backend and peer gets --threads.
The targets (the default fp32 path >= 0.95x the fastest fp32 peer; the best reduced-precision path >= 60 dB and >=
0.95x OpenVINO bf16; 12 MP tiled under 1.5 GB) are checked at the end. Prints a table, then the JSON (--json).

  .venv/bin/python scripts/benchmark_inference.py                           # everything (about 12 minutes)
  .venv/bin/python scripts/benchmark_inference.py --sizes 0.5,1 --no-rss    # quick look
"""
import argparse
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import threading
import time

import numpy as np
import torch

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))
import sclle_basicsr  # noqa: E402,F401
from sclle_basicsr.archs.dcenet_arch import DCENet  # noqa: E402
from sclle_basicsr.assets import asset_path  # noqa: E402
from sclle_basicsr.export import onnx_bytes  # noqa: E402
from sclle_basicsr.inference import enhance_tensor, load_enhancer, select_backend  # noqa: E402
from sclle_basicsr.inference.backends import cpu_flags, import_runtime, openvino_native_bf16  # noqa: E402
from sclle_basicsr.inference.tiling import tile_ranges  # noqa: E402

SIZES = {0.5: (612, 816), 1.0: (864, 1152), 4.0: (1728, 2304), 12.0: (3000, 4000)}
FLAGS_SHOWN = ('avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx512_fp16', 'amx_tile', 'amx_bf16')
TARGET_RATIO, TARGET_PSNR_DB, TARGET_RSS_MB = 0.95, 60.0, 1536
# name: (label, precision, kind); kind 'project' goes through enhance_tensor(backend=...), 'peer' calls the runtime
CONFIGS = {
    'eager': ('eager DCENet.forward (released code path)', 'fp32', 'baseline'),
    'torch-fp32': ('project torch fp32', 'fp32', 'project'),
    'torch-bf16': ('project torch bf16', 'bf16', 'project'),
    'onnxruntime-fp32': ('project onnxruntime fp32', 'fp32', 'project'),
    'openvino-fp32': ('project openvino fp32', 'fp32', 'project'),
    'openvino-bf16': ('project openvino bf16', 'bf16', 'project'),
    'peer-ort-fp32': ('peer ONNX Runtime fp32 (direct)', 'fp32', 'peer'),
    'peer-ov-fp32': ('peer OpenVINO fp32 (direct)', 'fp32', 'peer'),
    'peer-ov-bf16': ('peer OpenVINO bf16 (direct)', 'bf16', 'peer'),
}


def shape_for(mp):
    """(H, W) of a 4:3 image of about ``mp`` megapixels (the table's sizes for the standard ones)."""
    if mp in SIZES:
        return SIZES[mp]
    h = max(16, int(round((mp * 1e6 * 3 / 4)**0.5 / 8)) * 8)
    return h, h * 4 // 3


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
        ov = import_runtime('openvino')
        core = ov.Core()
        config = {'INFERENCE_NUM_THREADS': threads,
                  'INFERENCE_PRECISION_HINT': {'fp32': 'f32', 'bf16': 'bf16'}[precision]}
        request = core.compile_model(core.read_model(graph), 'CPU', config).create_infer_request()
        call = lambda a: request.infer({0: a})[0]  # noqa: E731
    return lambda x, tile: torch.from_numpy(tiled(call, x.numpy(), tile))


def available(name):
    backend = {'peer-ort-fp32': 'onnxruntime', 'peer-ov-fp32': 'openvino', 'peer-ov-bf16': 'openvino'}.get(
        name, name.rsplit('-', 1)[0])
    precision = CONFIGS[name][1]
    try:
        if backend in ('onnxruntime', 'openvino'):
            import_runtime(backend)
        if precision == 'bf16' and backend == 'openvino' and not openvino_native_bf16():
            return 'no native bf16 in OpenVINO on this CPU'
        if precision == 'bf16' and backend == 'torch' and not cpu_flags() & {'avx512_bf16', 'amx_bf16'}:
            return 'no native bf16 (emulated: very slow)'
    except Exception as err:  # noqa: BLE001  (reported as the reason it is skipped)
        return str(err)
    return None


def load_model(model_path):
    if model_path and osp.isfile(model_path):
        return load_enhancer(model_path, 'cpu'), model_path
    torch.manual_seed(0)
    return DCENet().eval().requires_grad_(False), 'random DCENet (released weights not found)'


def low_light_image(mp):
    h, w = shape_for(mp)
    return torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 0.4


# ---------------------------------------------------------------------------------------------------------------
# measurement helpers


class PeakRSS:
    """Peak resident set size (bytes) while the block runs, sampled from /proc/self/statm."""

    def __init__(self, interval=0.002):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._page = os.sysconf('SC_PAGE_SIZE') if hasattr(os, 'sysconf') else 4096

    def _rss(self):
        try:
            with open('/proc/self/statm') as f:
                return int(f.read().split()[1]) * self._page
        except OSError:
            return 0

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            self._stop.wait(self.interval)

    def __enter__(self):
        _malloc_trim()
        self.start = self._rss()
        self.peak = self.start
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        return False


def _malloc_trim():
    """Hand freed heap memory back to the OS (glibc) so that each measured block's peak starts from a clean RSS."""
    try:
        import ctypes
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_rss_child(args):
    """Run one configuration once in this (fresh) process; print its peak RSS as JSON."""
    torch.set_num_threads(args.threads)
    net, _ = load_model(args.model_path or asset_path('weights', 'sclle_official.pth'))
    mp = float(args.sizes)
    x = low_light_image(mp)
    run = make_runner(args.rss_child, net, onnx_bytes(net), args.threads)
    before = _status_kib('VmRSS')
    run(x, args.tile if mp > args.tile_above else 0)
    print(json.dumps({'peak_rss_mb': round(_status_kib('VmHWM') / 1024), 'rss_before_run_mb': round(before / 1024)}))


def _status_kib(field):
    """A field of /proc/self/status in KiB. VmHWM (peak RSS) starts afresh at exec, unlike ru_maxrss, which keeps
    the forked parent's peak."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{field} not in /proc/self/status')


def measure_rss(name, mp, args):
    cmd = [sys.executable, osp.abspath(__file__), '--rss-child', name, '--sizes', str(mp), '--threads',
           str(args.threads), '--tile', str(args.tile), '--tile-above', str(args.tile_above)]
    if args.model_path:
        cmd += ['--model_path', args.model_path]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f'peak-RSS run of {name} at {mp} MP failed: {proc.stderr[-2000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


def matmul_gflops(dtype, n, repeats=2):
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def psnr(a, b):
    mse = float(((a.float() - b.float())**2).mean())
    return float('inf') if mse == 0 else 10 * float(np.log10(1.0 / mse))


def _cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def _version(module):
    try:
        return import_runtime(module).__version__
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------------------------------------------


def race(names, runners, x, tile, repeats):
    """Warm each up (keeping its output), then time them round-robin; returns (times, outputs)."""
    outputs = {name: runners[name](x, tile) for name in names}
    times = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            t0 = time.perf_counter()
            runners[name](x, tile)
            times[name].append(time.perf_counter() - t0)
    return times, outputs


def check_targets(rows, auto_fp32):
    """Per size: the default fp32 path vs the fastest fp32 peer, the best >= 60 dB reduced-precision path vs
    OpenVINO bf16 (where measured), and the 12 MP peak RSS of the default path."""
    checks = []
    for mp in sorted({r['mp'] for r in rows}):
        at = {r['config']: r for r in rows if r['mp'] == mp}
        default = at.get(f'{auto_fp32}-fp32')
        if default and default.get('vs_best_peer') is not None:
            checks.append({'mp': mp, 'target': f'default fp32 ({auto_fp32}) >= {TARGET_RATIO}x fastest fp32 peer',
                           'value': default['vs_best_peer'], 'met': default['vs_best_peer'] >= TARGET_RATIO})
        reduced = [r for r in at.values() if r['kind'] != 'peer' and r['precision'] != 'fp32'
                   and r.get('psnr_vs_fp32_db', 0) >= TARGET_PSNR_DB and r.get('vs_best_peer') is not None]
        if reduced:
            best = max(reduced, key=lambda r: r['mp_per_s'])
            checks.append({'mp': mp, 'target': f'best reduced precision ({best["config"]}, {best["psnr_vs_fp32_db"]} '
                           f'dB) >= {TARGET_RATIO}x OpenVINO bf16', 'value': best['vs_best_peer'],
                           'met': best['vs_best_peer'] >= TARGET_RATIO})
        if mp >= 12 and default and default.get('peak_rss_mb') is not None:
            checks.append({'mp': mp, 'target': f'default path, tiled, peak RSS < {TARGET_RSS_MB} MB',
                           'value': default['peak_rss_mb'], 'met': default['peak_rss_mb'] < TARGET_RSS_MB})
    return checks


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', default='0.5,1,4,12', help='megapixels (4:3 images)')
    p.add_argument('--configs', default=','.join(CONFIGS), help='subset of: ' + ', '.join(CONFIGS))
    p.add_argument('--repeats', type=int, default=3, help='timed runs per configuration up to 1 MP')
    p.add_argument('--large-repeats', type=int, default=2, help='timed runs per configuration above 1 MP')
    p.add_argument('--tile', type=int, default=384, help='tile used above --tile-above MP (all configurations)')
    p.add_argument('--tile-above', type=float, default=1.0, help='tile images larger than this many MP')
    p.add_argument('--threads', type=int, default=2, help='threads for every backend and peer')
    p.add_argument('--matmul-size', type=int, default=4096)
    p.add_argument('--no-rss', action='store_true', help='skip the peak-RSS subprocesses')
    p.add_argument('--model_path', default=None, help='default: the released SCL-LLE weights, else random')
    p.add_argument('--json', default=None, help='also write the JSON here')
    p.add_argument('--rss-child', default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_child:
        return peak_rss_child(args)

    torch.set_num_threads(args.threads)
    sizes = [float(s) for s in args.sizes.split(',') if s]
    wanted = [c for c in args.configs.split(',') if c]
    for c in wanted:
        if c not in CONFIGS:
            p.error(f'unknown configuration {c} (choose from {", ".join(CONFIGS)})')
    skipped = {c: why for c in wanted if (why := available(c))}
    names = [c for c in wanted if c not in skipped]
    net, weights = load_model(args.model_path or asset_path('weights', 'sclle_official.pth'))
    auto_fp32 = select_backend('auto', torch.device('cpu'), 'fp32')
    flags = cpu_flags()
    info = {
        'cpu': _cpu_name(), 'flags': [f for f in FLAGS_SHOWN if f in flags], 'os_cpus': os.cpu_count(),
        'threads': args.threads, 'python': platform.python_version(), 'torch': torch.__version__,
        'onnxruntime': _version('onnxruntime'), 'openvino': _version('openvino'), 'weights': weights,
        'auto_fp32': auto_fp32, 'auto_bf16': select_backend('auto', torch.device('cpu'), 'bf16'),
        'skipped': skipped, 'loadavg_before': os.getloadavg(),
    }
    native_bf16 = bool(flags & {'avx512_bf16', 'amx_bf16'})
    info['matmul_fp32_gflops'] = round(matmul_gflops(torch.float32, args.matmul_size), 1)
    info['matmul_bf16_size'] = args.matmul_size if native_bf16 else 1024
    info['matmul_bf16_gflops'] = round(matmul_gflops(torch.bfloat16, info['matmul_bf16_size'], repeats=1), 1)
    print(f'# {info["cpu"]} ({" ".join(info["flags"])}), {args.threads} threads, torch {torch.__version__}, '
          f'onnxruntime {info["onnxruntime"]}, openvino {info["openvino"]}; auto: fp32 -> {auto_fp32}, bf16 -> '
          f'{info["auto_bf16"]}; matmul fp32 {info["matmul_fp32_gflops"]} GFLOP/s, bf16 '
          f'{info["matmul_bf16_gflops"]} GFLOP/s; load {info["loadavg_before"]}', flush=True)
    for c, why in skipped.items():
        print(f'# skipped {c}: {why}', flush=True)

    graph = onnx_bytes(net)
    runners = {name: make_runner(name, net, graph, args.threads) for name in names}
    rows = []
    for mp in sizes:
        x = low_light_image(mp)
        h, w = x.shape[-2:]
        tile = args.tile if mp > args.tile_above else 0
        times, outputs = race(names, runners, x, tile, args.repeats if mp <= 1 else args.large_repeats)
        reference = outputs.get('torch-fp32', outputs.get('eager'))
        best_peer = {prec: max((h * w / 1e6 / min(times[n]) for n in names
                                if CONFIGS[n][2] == 'peer' and CONFIGS[n][1] == prec), default=None)
                     for prec in ('fp32', 'bf16')}
        for name in names:
            label, precision, kind = CONFIGS[name]
            rate = h * w / 1e6 / min(times[name])
            row = {'mp': mp, 'shape': [h, w], 'config': name, 'label': label, 'precision': precision, 'kind': kind,
                   'tile': tile, 'seconds': [round(s, 3) for s in times[name]], 'mp_per_s': round(rate, 3),
                   'vs_best_peer': round(rate / best_peer[precision], 3) if best_peer[precision] else None}
            if reference is not None and precision == 'fp32':
                row['max_abs_diff_vs_fp32'] = float((outputs[name] - reference).abs().max())
            elif reference is not None:
                row['psnr_vs_fp32_db'] = round(psnr(outputs[name], reference), 1)
            if not args.no_rss:
                row.update(measure_rss(name, mp, args))
            rows.append(row)
            print(f'  {mp:>5} MP {name:<17} {rate:7.3f} MP/s  x{row["vs_best_peer"]} of best peer  '
                  f'peak RSS {row.get("peak_rss_mb", "-")} MB', flush=True)
        del outputs
    info['loadavg_after'] = os.getloadavg()
    report = {'machine': info, 'results': rows, 'targets': check_targets(rows, auto_fp32)}
    print()
    print(table(rows))
    print()
    for c in report['targets']:
        print(f'{"MET    " if c["met"] else "NOT MET"} {c["mp"]:>5} MP  {c["target"]}: {c["value"]}')
    print()
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)
    return report


def table(rows):
    head = ('MP', 'path', 'MP/s', 'x best peer (same precision)', 'peak RSS MB', 'vs torch fp32')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        accuracy = (f'{r["psnr_vs_fp32_db"]} dB' if 'psnr_vs_fp32_db' in r else
                    f'max {r["max_abs_diff_vs_fp32"]:.1e}' if 'max_abs_diff_vs_fp32' in r else '')
        size = f'{r["mp"]:g}' + (f' (tile {r["tile"]})' if r['tile'] else '')
        lines.append('| ' + ' | '.join(str(v) for v in (
            size, r['label'], r['mp_per_s'], r['vs_best_peer'] if r['vs_best_peer'] is not None else '-',
            r.get('peak_rss_mb', '-'), accuracy)) + ' |')
    return '\n'.join(lines)


if __name__ == '__main__':
    main()
