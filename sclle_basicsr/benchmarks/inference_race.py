"""The inference race: every configuration of :mod:`.inference_paths` on the same images, timed round-robin.

Round-robin (one of each in a shuffled order, then again) so that load from other processes, and the threads a
previous path leaves spinning, hit all configurations alike. Reported: the minimum over repeats in MP/s; the ratio
to the best peer of the same precision, as the median over rounds of the peer's time over the configuration's time
in that round (paired: a slow moment of a shared machine slows both); the accuracy against torch fp32; optionally
the peak RSS of a fresh process running the configuration once (:mod:`.rss_child`).
"""
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from sclle_basicsr.benchmarks.inference_paths import (
    CONFIGS,
    load_model,
    low_light_image,
    make_runner,
    unavailable_reason,
)
from sclle_basicsr.benchmarks.machine import describe_machine, matmul_gflops, runtime_version
from sclle_basicsr.inference import select_backend
from sclle_basicsr.inference.backends import native_bf16
from sclle_basicsr.inference.onnx_graph import onnx_bytes

TARGET_RATIO, TARGET_PSNR_DB, TARGET_RSS_MB = 0.97, 60.0, 1536
_progress = functools.partial(print, flush=True)


def psnr(a, b):
    mse = float(((a.float() - b.float())**2).mean())
    return float('inf') if mse == 0 else 10 * float(np.log10(1.0 / mse))


def race(names, runners, x, tile, repeats, warmups=2):
    """Warm each up (keeping its output), then time them round-robin; returns (times, outputs).

    Two warm-up calls: the OpenVINO backend compiles a static model when a shape comes the second time, so its
    steady state (every later image of that size) begins at the third call.
    """
    outputs = {name: runners[name](x, tile) for name in names}
    for _ in range(warmups - 1):
        for name in names:
            runners[name](x, tile)
    times = {name: [] for name in names}
    for round_ in range(repeats):
        order = list(names)
        random.Random(round_).shuffle(order)  # a path's predecessor (whose threads may still spin) varies
        for name in order:
            t0 = time.perf_counter()
            runners[name](x, tile)
            times[name].append(time.perf_counter() - t0)
    return times, outputs


def _round_ratios(times, peer_times):
    return [p / t for t, p in zip(times, peer_times)]


def paired_ratio(times, peer_times):
    """Median over rounds of ``peer time / time``: above 1 when faster than the peer."""
    return round(statistics.median(_round_ratios(times, peer_times)), 3)


def paired_quartiles(times, peer_times):
    """First and third quartiles of the per-round ratios (how far one round's ratio moves), ``None`` under 4
    rounds."""
    ratios = _round_ratios(times, peer_times)
    if len(ratios) < 4:
        return None
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    return [round(q1, 3), round(q3, 3)]


def measure_rss(name, mp, threads, tile, tile_above, model_path=None):
    """Peak RSS of configuration ``name`` at ``mp`` megapixels, run once in a fresh process."""
    cmd = [sys.executable, '-m', 'sclle_basicsr.benchmarks.rss_child', name, str(mp), '--threads', str(threads),
           '--tile', str(tile), '--tile_above', str(tile_above)]
    if model_path:
        cmd += ['--model_path', model_path]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f'peak-RSS run of {name} at {mp} MP failed: {proc.stderr[-2000:]}')
    return json.loads(proc.stdout.strip().splitlines()[-1])


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


def machine_info(names_wanted, threads, matmul_size, weights):
    """The report's ``machine`` entry: the machine, the runtimes, the ``auto`` choices, the matmul yardstick and the
    configurations skipped here (with why)."""
    cpu = torch.device('cpu')
    info = describe_machine(threads)
    info.update({
        'onnxruntime': runtime_version('onnxruntime'), 'openvino': runtime_version('openvino'), 'weights': weights,
        'auto_fp32': select_backend('auto', cpu, 'fp32'), 'auto_bf16': select_backend('auto', cpu, 'bf16'),
        'skipped': {c: why for c in names_wanted if (why := unavailable_reason(c))},
        'loadavg_before': os.getloadavg(),
    })
    info['matmul_fp32_gflops'] = round(matmul_gflops(torch.float32, matmul_size), 1)
    info['matmul_bf16_size'] = matmul_size if native_bf16() else 1024
    info['matmul_bf16_gflops'] = round(matmul_gflops(torch.bfloat16, info['matmul_bf16_size'], repeats=1), 1)
    return info


def run_race(sizes, configs=tuple(CONFIGS), repeats=5, large_repeats=3, tile=384, tile_above=1.0, threads=2,
             matmul_size=4096, rss=True, model_path=None, log=_progress):
    """Race ``configs`` at each of ``sizes`` (megapixels); images above ``tile_above`` MP run in ``tile`` tiles.

    Returns the report ``{'machine', 'results', 'targets'}``; progress goes to ``log``.
    """
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f'unknown configuration {unknown[0]} (choose from {", ".join(CONFIGS)})')
    torch.set_num_threads(threads)
    net, weights = load_model(model_path)
    info = machine_info(configs, threads, matmul_size, weights)
    names = [c for c in configs if c not in info['skipped']]
    log(f'# {info["cpu"]} ({" ".join(info["flags"])}), {threads} threads, torch {torch.__version__}, '
        f'onnxruntime {info["onnxruntime"]}, openvino {info["openvino"]}; auto: fp32 -> {info["auto_fp32"]}, bf16 -> '
        f'{info["auto_bf16"]}; matmul fp32 {info["matmul_fp32_gflops"]} GFLOP/s, bf16 '
        f'{info["matmul_bf16_gflops"]} GFLOP/s; load {info["loadavg_before"]}')
    for c, why in info['skipped'].items():
        log(f'# skipped {c}: {why}')

    graph = onnx_bytes(net)
    runners = {name: make_runner(name, net, graph, threads) for name in names}
    rows = []
    for mp in sizes:
        x = low_light_image(mp)
        h, w = x.shape[-2:]
        size_tile = tile if mp > tile_above else 0
        times, outputs = race(names, runners, x, size_tile, repeats if mp <= 1 else large_repeats)
        reference = outputs.get('torch-fp32', outputs.get('eager'))
        best_peer = {prec: min((n for n in names if CONFIGS[n][2] == 'peer' and CONFIGS[n][1] == prec),
                               key=lambda n: min(times[n]), default=None) for prec in ('fp32', 'bf16')}
        for name in names:
            label, precision, kind = CONFIGS[name]
            rate = h * w / 1e6 / min(times[name])
            row = {'mp': mp, 'shape': [h, w], 'config': name, 'label': label, 'precision': precision, 'kind': kind,
                   'tile': size_tile, 'seconds': [round(s, 3) for s in times[name]], 'mp_per_s': round(rate, 3),
                   'vs_best_peer': paired_ratio(times[name], times[best_peer[precision]])
                   if best_peer[precision] else None,
                   'vs_best_peer_quartiles': paired_quartiles(times[name], times[best_peer[precision]])
                   if best_peer[precision] else None}
            if reference is not None and precision == 'fp32':
                row['max_abs_diff_vs_fp32'] = float((outputs[name] - reference).abs().max())
            elif reference is not None:
                row['psnr_vs_fp32_db'] = round(psnr(outputs[name], reference), 1)
            if rss:
                row.update(measure_rss(name, mp, threads, tile, tile_above, model_path))
            rows.append(row)
            log(f'  {mp:>5} MP {name:<17} {rate:7.3f} MP/s  x{row["vs_best_peer"]} of best peer  '
                f'peak RSS {row.get("peak_rss_mb", "-")} MB')
        del outputs
    info['loadavg_after'] = os.getloadavg()
    return {'machine': info, 'results': rows, 'targets': check_targets(rows, info['auto_fp32'])}


def table(rows):
    """The results as a Markdown table."""
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


def target_lines(checks):
    """One ``MET`` / ``NOT MET`` line per target check."""
    return [f'{"MET    " if c["met"] else "NOT MET"} {c["mp"]:>5} MP  {c["target"]}: {c["value"]}' for c in checks]
