"""Benchmark the shared inference path (``sclle_basicsr.inference``) against a plain eager re-implementation.

Measured side by side in one run, at about 0.5, 1, 4 and 12 megapixels (4:3 images):

  (a)  baseline: the released network written out here with F.conv2d + torch.cat + the curve loop, fp32, NCHW,
       denormals flushed (torch.set_flush_denormal(True));
  (a') the same with the released weights as they are (subnormals kept, denormals not flushed), at 0.5 MP only;
  (b)  the project fp32 path: enhance_tensor(precision='fp32');
  (c)  the project bf16 path: enhance_tensor(precision='bf16').

Configurations run round-robin (a, b, c, a, b, c, ...) so that load from other processes hits them alike; the
minimum over repeats is reported, in MP/s, with the ratio to (a), the peak RSS while each ran (sampled from
/proc/self/statm every 2 ms), and the PSNR of bf16 vs fp32 output. Above --tile-above MP every configuration,
the baseline included, runs tiled (--tile, pad 8) so that memory stays bounded; it says so in the table.
The machine's fp32 and bf16 matmul GFLOP/s (4096^2 by default) are measured in the same run; bf16 is first
probed at 1024^2 and measured at the full size only if that would take under --matmul-max-s seconds.

Prints a table, then the JSON (also written to --json). Weights: the released SCL-LLE checkpoint from
$SCLLE_ASSETS (default ../shared/assets) if present, else a random DCENet (then (a') is skipped).

  .venv/bin/python scripts/benchmark_inference.py                      # everything (several minutes)
  .venv/bin/python scripts/benchmark_inference.py --sizes 0.5,1 --repeats 2 --bf16-sizes 0.5
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import threading
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), osp.pardir)))
import sclle_basicsr  # noqa: E402,F401
from sclle_basicsr.archs.dcenet_arch import DCENet  # noqa: E402
from sclle_basicsr.assets import asset_path  # noqa: E402
from sclle_basicsr.inference import enhance_tensor, load_enhancer, native_bf16_supported  # noqa: E402

SIZES = {0.5: (612, 816), 1.0: (864, 1152), 4.0: (1728, 2304), 12.0: (3000, 4000)}


# ---------------------------------------------------------------------------------------------------------------
# (a) baseline: the released network, written out plainly


def baseline_forward(w, x):
    """Zero-DCE / SCL-LLE DCE-Net as released: 7 convs, skip concatenations, 8 curve iterations (fp32, NCHW)."""

    def conv(name, inp):
        return F.conv2d(inp, w[f'{name}.weight'], w[f'{name}.bias'], padding=1)

    x1 = F.relu(conv('e_conv1', x))
    x2 = F.relu(conv('e_conv2', x1))
    x3 = F.relu(conv('e_conv3', x2))
    x4 = F.relu(conv('e_conv4', x3))
    x5 = F.relu(conv('e_conv5', torch.cat([x3, x4], 1)))
    x6 = F.relu(conv('e_conv6', torch.cat([x2, x5], 1)))
    r = torch.tanh(conv('e_conv7', torch.cat([x1, x6], 1)))
    for a in torch.split(r, 3, dim=1):
        x = x + a * (x * x - x)
    return x


def tiled(fn, x, tile, pad=8):
    """Tile ``fn`` over x (only used above --tile-above MP, for every configuration alike)."""
    if not tile:
        return fn(x)
    _, _, h, w = x.shape
    out = torch.empty_like(x)
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            py0, px0, py1, px1 = max(0, y0 - pad), max(0, x0 - pad), min(h, y1 + pad), min(w, x1 + pad)
            res = fn(x[:, :, py0:py1, px0:px1])
            out[:, :, y0:y1, x0:x1] = res[:, :, y0 - py0:y1 - py0, x0 - px0:x1 - px0]
    return out


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
    """Hand freed heap memory back to the OS (glibc) so that each configuration's peak starts from a clean RSS."""
    try:
        import ctypes
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):
        pass


def matmul_gflops(dtype, n, repeats=2):
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = float('inf')
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def psnr(a, b):
    mse = float(((a - b)**2).mean())
    return float('inf') if mse == 0 else 10 * torch.log10(torch.tensor(1.0 / mse)).item()


# ---------------------------------------------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', default='0.5,1,4,12', help='megapixels, from 0.5,1,4,12')
    p.add_argument('--repeats', type=int, default=3, help='timed runs per configuration up to 1 MP')
    p.add_argument('--large-repeats', type=int, default=1, help='timed runs per configuration above 1 MP')
    p.add_argument('--bf16-sizes', default=None,
                   help='sizes for (c); default: all sizes with native bf16, else 0.5 only (emulated bf16 is slow)')
    p.add_argument('--bf16-repeats', type=int, default=None, help='default: as fp32 with native bf16, else 1')
    p.add_argument('--tile', type=int, default=1024, help='tile used above --tile-above MP (all configurations)')
    p.add_argument('--tile-above', type=float, default=4.0, help='tile images larger than this many MP')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (default: torch default)')
    p.add_argument('--matmul-size', type=int, default=4096)
    p.add_argument('--matmul-max-s', type=float, default=30.0, help='time cap for one bf16 matmul')
    p.add_argument('--no-subnormal-baseline', action='store_true', help="skip (a')")
    p.add_argument('--model_path', default=None, help='default: the released SCL-LLE weights, else random')
    p.add_argument('--json', default=None, help='also write the JSON here')
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [float(s) for s in args.sizes.split(',') if s]
    for s in sizes:
        if s not in SIZES:
            p.error(f'size {s} not in {sorted(SIZES)}')
    native_bf16 = native_bf16_supported()
    bf16_sizes = ([float(s) for s in args.bf16_sizes.split(',') if s] if args.bf16_sizes is not None else
                  (sizes if native_bf16 else [s for s in sizes if s == 0.5][:1]))
    bf16_repeats = args.bf16_repeats or (None if native_bf16 else 1)

    model_path = args.model_path or asset_path('weights', 'sclle_official.pth')
    released = osp.isfile(model_path)
    if released:
        raw = torch.load(model_path, map_location='cpu', weights_only=True)
        raw = raw.get('params_ema', raw.get('params', raw))
        raw = {k: v.float().contiguous() for k, v in raw.items()}
        net = load_enhancer(model_path, 'cpu')
    else:
        torch.manual_seed(0)
        net = DCENet().eval().requires_grad_(False)
        raw = {k: v.clone() for k, v in net.state_dict().items()}
    n_sub = sum(int(((v != 0) & (v.abs() < torch.finfo(torch.float32).tiny)).sum()) for v in raw.values())
    n_par = sum(v.numel() for v in raw.values())
    flushed = {k: v.clone() for k, v in raw.items()}
    for v in flushed.values():
        v.masked_fill_((v != 0) & (v.abs() < torch.finfo(torch.float32).tiny), 0)

    load_before = os.getloadavg() if hasattr(os, 'getloadavg') else None
    info = {
        'python': platform.python_version(), 'torch': torch.__version__, 'machine': platform.machine(),
        'cpu': _cpu_name(), 'cpu_capability': torch.backends.cpu.get_cpu_capability(),
        'native_bf16': native_bf16, 'threads': torch.get_num_threads(), 'os_cpus': os.cpu_count(),
        'weights': model_path if released else 'random DCENet (released weights not found)',
        'weights_subnormal': f'{n_sub}/{n_par}', 'loadavg_before': load_before,
    }
    print(f'# {info["cpu"]} ({info["cpu_capability"]}, native bf16: {native_bf16}), {info["threads"]} threads, '
          f'torch {torch.__version__}; load average before: {load_before}', flush=True)

    t = time.perf_counter()
    info['matmul_fp32_gflops'] = round(matmul_gflops(torch.float32, args.matmul_size), 1)
    info['matmul_fp32_size'] = args.matmul_size
    probe_n = min(1024, args.matmul_size)
    probe = matmul_gflops(torch.bfloat16, probe_n, repeats=1)
    predicted = 2 * args.matmul_size**3 / (probe * 1e9)
    if predicted <= args.matmul_max_s:
        info['matmul_bf16_gflops'] = round(matmul_gflops(torch.bfloat16, args.matmul_size, repeats=1), 1)
        info['matmul_bf16_size'] = args.matmul_size
    else:
        info['matmul_bf16_gflops'] = round(probe, 2)
        info['matmul_bf16_size'] = probe_n
        info['matmul_bf16_note'] = (f'{args.matmul_size}^2 bf16 would take ~{predicted:.0f} s at the {probe_n}^2 '
                                    f'rate; measured at {probe_n}^2 (raise --matmul-max-s to force)')
    print(f'# matmul fp32 {info["matmul_fp32_size"]}^2: {info["matmul_fp32_gflops"]} GFLOP/s; bf16 '
          f'{info["matmul_bf16_size"]}^2: {info["matmul_bf16_gflops"]} GFLOP/s ({time.perf_counter() - t:.0f} s)',
          flush=True)

    results = []
    for mp in sizes:
        h, w = SIZES[mp]
        torch.manual_seed(0)
        x = torch.rand(1, 3, h, w) * 0.4  # low-light-like range
        tile = args.tile if mp > args.tile_above else 0
        repeats = args.repeats if mp <= 1 else args.large_repeats

        def run_a(x=x, tile=tile):
            torch.set_flush_denormal(True)
            try:
                with torch.inference_mode():
                    return tiled(lambda t: baseline_forward(flushed, t), x, tile)
            finally:
                torch.set_flush_denormal(False)

        def run_a_sub(x=x):
            torch.set_flush_denormal(False)
            with torch.inference_mode():
                return baseline_forward(raw, x)

        configs = [('a', 'baseline eager fp32 NCHW, FTZ', run_a, repeats)]
        if mp == 0.5 and released and n_sub and not args.no_subnormal_baseline:
            configs.append(("a'", 'baseline, subnormal weights kept', run_a_sub, 1))
        configs.append(('b', 'project fp32', lambda x=x, tile=tile: enhance_tensor(net, x, tile=tile), repeats))
        if mp in bf16_sizes:
            configs.append(('c', 'project bf16', lambda x=x, tile=tile: enhance_tensor(
                net, x, tile=tile, precision='bf16'), bf16_repeats or repeats))

        outputs, times, cpu, peaks = {}, {k: [] for k, *_ in configs}, {k: [] for k, *_ in configs}, {}
        deltas = {}
        for key, _, fn, _ in configs:  # warm-up, and keep one output for the accuracy columns
            with PeakRSS() as rss:
                outputs[key] = fn()
            peaks[key], deltas[key] = rss.peak, rss.peak - rss.start
        for i in range(max(c[3] for c in configs)):
            for key, _, fn, n in configs:
                if i >= n:
                    continue
                with PeakRSS() as rss:
                    t0, c0 = time.perf_counter(), time.process_time()
                    fn()
                    times[key].append(time.perf_counter() - t0)
                    cpu[key].append(time.process_time() - c0)
                peaks[key] = max(peaks[key], rss.peak)
                deltas[key] = max(deltas[key], rss.peak - rss.start)
        base = min(times['a'])
        for key, label, _, _ in configs:
            best = min(times[key])
            row = {
                'mp': mp, 'shape': [h, w], 'config': key, 'label': label, 'tile': tile, 'runs': len(times[key]),
                'seconds_min': round(best, 3), 'seconds_all': [round(s, 3) for s in times[key]],
                'cpu_seconds_min': round(min(cpu[key]), 3), 'mp_per_s': round(h * w / 1e6 / best, 3),
                'speedup_vs_a': round(base / best, 2), 'peak_rss_mb': round(peaks[key] / 2**20),
                'peak_rss_increase_mb': round(deltas[key] / 2**20),
                'max_abs_diff_vs_a': float((outputs[key] - outputs['a']).abs().max()),
            }
            if key == 'c':
                row['psnr_vs_fp32_db'] = round(psnr(outputs['c'], outputs['b']), 2)
            results.append(row)
            print(f'  {mp:>4} MP {key:<2} {label:<34} {row["mp_per_s"]:8.3f} MP/s  x{row["speedup_vs_a"]:<5} '
                  f'peak {row["peak_rss_mb"]} MB (+{row["peak_rss_increase_mb"]})', flush=True)
        del outputs

    info['loadavg_after'] = os.getloadavg() if hasattr(os, 'getloadavg') else None
    report = {'machine': info, 'results': results}
    print()
    print(_table(results))
    print()
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)


def _table(rows):
    head = ('MP', 'config', 'tile', 'MP/s', 'x vs (a)', 'CPU s', 'peak RSS MB (+ over start)', 'PSNR bf16/fp32',
            'max|d| vs a')
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for r in rows:
        lines.append('| ' + ' | '.join(str(v) for v in (
            r['mp'], f"({r['config']}) {r['label']}", r['tile'] or '-', r['mp_per_s'], r['speedup_vs_a'],
            r['cpu_seconds_min'], f"{r['peak_rss_mb']} (+{r['peak_rss_increase_mb']})",
            r.get('psnr_vs_fp32_db', ''), f"{r['max_abs_diff_vs_a']:.1e}")) + ' |')
    return '\n'.join(lines)


def _cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


if __name__ == '__main__':
    main()
