"""The GPU figures of the project in one run (``make gpu-check``): the CUDA-marked tests, a training step per
precision, inference per precision and tile, peak memory, written as a small report (JSON and Markdown).

Every measurement is a function of the device, so that a machine without CUDA runs the same code on the CPU at a
tiny size: the dry run, which checks the script itself and writes a report marked ``dry_run``.
"""
import os
import statistics
import subprocess
import sys
import time

import torch
from basicsr.models import build_model

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.benchmarks.inference_paths import load_model
from sclle_basicsr.benchmarks.machine import describe_machine
from sclle_basicsr.benchmarks.memory import PeakRSS
from sclle_basicsr.benchmarks.training_step import make_batch, model_options, project_step
from sclle_basicsr.inference import enhance_tensor
from sclle_basicsr.inference.backends import cuda_bf16_support
from sclle_basicsr.inference.memory_budget import (
    BYTES_PER_PIXEL,
    FIXED_BYTES,
    IO_BYTES_PER_PIXEL,
    default_budget,
)
from sclle_basicsr.inference.tiling import TILE_PAD
from sclle_basicsr.utils.assets import REPO_ROOT

PRECISIONS = ('fp32', 'bf16', 'fp16')
# (training crop, batch, timed steps, warm-up steps), (inference height, width, tiles, repeats)
FULL = {'train': (384, 2, 5, 3), 'infer': (3000, 4000, (0, 1024, 512), 3)}
DRY = {'train': (32, 1, 1, 1), 'infer': (96, 128, (0, 64), 1)}


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def unavailable(device, precision):
    """Why ``precision`` is not measured on ``device`` (None when it is)."""
    if device.type == 'cuda' and precision == 'bf16' and cuda_bf16_support() != 'native':
        return f'{torch.cuda.get_device_name(device)} has no native bf16'
    if device.type == 'cpu' and precision == 'fp16':
        return 'fp16 on a CPU is not measured (far slower than fp32; CUDA only)'
    return None


class PeakMemory:
    """Peak memory a block adds, in bytes: the CUDA allocator's on a GPU, the resident set size on a CPU."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        synchronize(self.device)
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        else:
            self.rss = PeakRSS().__enter__()
        return self

    def __exit__(self, *exc):
        synchronize(self.device)
        if self.device.type == 'cuda':
            self.peak = torch.cuda.max_memory_allocated(self.device) - self.start
        else:
            self.rss.__exit__(*exc)
            self.peak = self.rss.peak - self.rss.start
        return False


def training_steps(device, plan, log):
    """Per precision: ms per step (median and minimum over the timed steps, synchronised), peak memory, losses."""
    size, batch, steps, warmup = plan
    results = {}
    for precision in PRECISIONS:
        reason = unavailable(device, precision)
        if reason:
            results[precision] = {'skipped': reason}
            continue
        torch.manual_seed(0)
        opt = model_options(device.type, None if precision == 'fp32' else precision)
        model = build_model(opt)
        data = make_batch(batch, size, model.device)
        for _ in range(warmup):  # cuDNN autotuning, first allocations; fp16's GradScaler settles its scale
            project_step(model, data)
        times, losses = [], []
        with PeakMemory(device) as memory:
            for _ in range(steps):
                synchronize(device)
                start = time.perf_counter()
                losses.append(project_step(model, data))
                synchronize(device)
                times.append(time.perf_counter() - start)
        results[precision] = {
            'ms_per_step_median': round(1000 * statistics.median(times), 1),
            'ms_per_step_min': round(1000 * min(times), 1), 'peak_mib': round(memory.peak / 2**20),
            'l_total': [round(v, 5) for v in losses], 'finite': all(v == v and abs(v) != float('inf') for v in losses)}
        if model.grad_scaler.is_enabled():
            results[precision]['loss_scale'] = model.grad_scaler.get_scale()
        log(f'training {precision}: {results[precision]}')
        del model, data
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    return {'crop': size, 'batch': batch, 'timed_steps': steps, 'warmup_steps': warmup,
            'losses': 'all four (segmentor: DeepLabv3+ R50 layout, random weights)', 'results': results}


def psnr(a, b):
    mse = float(((a.float().cpu() - b.float().cpu())**2).mean())
    return None if mse == 0 else round(-10 * torch.log10(torch.tensor(mse)).item(), 1)


def inference(device, plan, log, model_path=None):
    """Per precision and tile: MP/s (best of the repeats, synchronised), peak memory, bytes per pixel untiled,
    PSNR against fp32 (and, for fp32 on CUDA, against the CPU's fp32 on a crop)."""
    height, width, tiles, repeats = plan
    net, weights = load_model(model_path) if device.type == 'cuda' or model_path else (DCENet().eval(), 'random')
    net = net.to(device).requires_grad_(False)
    x = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(0)).mul_(0.4).to(device)
    megapixels = height * width / 1e6
    budget = default_budget(device)
    results, reference = {}, {}
    for precision in PRECISIONS:
        reason = unavailable(device, precision)
        for tile in tiles:
            key = f'{precision} tile {tile}'
            needs = 0 if reason or tile else FIXED_BYTES[device.type] + height * width * (
                IO_BYTES_PER_PIXEL + BYTES_PER_PIXEL[(device.type, 'torch', precision)])
            if reason or needs > budget:
                results[key] = {'skipped': reason or f'untiled needs about {needs / 2**30:.1f} GiB, over the budget '
                                                     f'of {budget / 2**30:.1f} GiB'}
                continue
            run = lambda: enhance_tensor(net, x, tile=tile, tile_pad=TILE_PAD, precision=precision, backend='torch')  # noqa
            with PeakMemory(device) as memory:
                out = run()
            best = float('inf')
            for _ in range(repeats):
                synchronize(device)
                start = time.perf_counter()
                run()
                synchronize(device)
                best = min(best, time.perf_counter() - start)
            row = {'mp_per_s': round(megapixels / best, 2), 'peak_mib': round(memory.peak / 2**20)}
            if tile == 0:
                row['bytes_per_pixel'] = round(memory.peak / (height * width))
                row['budget_figure'] = BYTES_PER_PIXEL[(device.type, 'torch', precision)] + IO_BYTES_PER_PIXEL
            reference.setdefault(tile, out if precision == 'fp32' else None)
            if precision != 'fp32' and reference.get(tile) is not None:
                row['psnr_vs_fp32_db'] = psnr(out, reference[tile])
            results[key] = row
            log(f'inference {key}: {row}')
            del out
    crop = x[:, :, :512, :512]
    versus_cpu = psnr(enhance_tensor(net, crop, tile=0, backend='torch'),
                      enhance_tensor(net.cpu(), crop.cpu(), tile=0, backend='torch'))
    net.to(device)
    return {'image': f'{width}x{height}', 'weights': weights, 'tile_pad': 8, 'repeats': repeats,
            'budget_gib': round(budget / 2**30, 1), 'fp32_vs_cpu_fp32_psnr_db_512px': versus_cpu,
            'results': results}


def cuda_tests(dry_run, log):
    """``pytest -m cuda`` over the test suite: its summary line and exit status (a dry run collects only)."""
    cmd = [sys.executable, '-m', 'pytest', '-q', '-rs', '-m', 'cuda', '-p', 'no:cacheprovider', 'tests']
    if dry_run:
        cmd.append('--collect-only')
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, env=dict(os.environ))
    lines = proc.stdout.strip().splitlines()
    summary = lines[-1] if lines else proc.stderr.strip()[-500:]
    log(f'CUDA-marked tests: {summary}')
    ok = proc.returncode == 0 or (dry_run and 'collected' in summary)
    return {'command': ' '.join(cmd[2:]), 'summary': summary, 'exit_status': proc.returncode, 'ok': ok,
            'output_tail': proc.stdout[-3000:] if not ok else ''}


def device_description(device):
    info = describe_machine(torch.get_num_threads())
    if device.type == 'cuda':
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, compute_capability=f'{props.major}.{props.minor}',
                    gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    cudnn=torch.backends.cudnn.version(), bf16=cuda_bf16_support(),
                    tf32={'conv': torch.backends.cudnn.conv.fp32_precision,
                          'matmul': torch.backends.cuda.matmul.fp32_precision})
    return info


def run_gpu_check(device, dry_run, log=print, model_path=None):
    plan = DRY if dry_run else FULL
    report = {'dry_run': dry_run, 'device': device_description(device)}
    report['cuda_tests'] = cuda_tests(dry_run, log)
    report['training_step'] = training_steps(device, plan['train'], log)
    report['inference'] = inference(device, plan['infer'], log, model_path)
    report['ok'] = report['cuda_tests']['ok'] and all(
        r.get('finite', True) for r in report['training_step']['results'].values())
    return report


def markdown(report):
    """The report as a short Markdown page."""
    dev = report['device']
    lines = [f"# GPU check{' (dry run on the CPU: the script checked, nothing measured)' if report['dry_run'] else ''}",
             '', f"Device: {dev.get('gpu', dev['cpu'])}" + (
                 f" (compute capability {dev['compute_capability']}, {dev['gpu_memory_gib']} GiB, CUDA {dev['cuda']}, "
                 f"cuDNN {dev['cudnn']}, bf16 {dev['bf16']}, TF32 {dev['tf32']})" if 'gpu' in dev else ''),
             f"torch {dev['torch']}, CPU {dev['cpu']}", '',
             f"CUDA-marked tests (`{report['cuda_tests']['command']}`): {report['cuda_tests']['summary']}", '']
    train = report['training_step']
    lines += [f"## Training step (batch {train['batch']}x{train['crop']}^2, {train['losses']}; median of "
              f"{train['timed_steps']} after {train['warmup_steps']} warm-up)", '',
              '| precision | ms/step (median) | ms/step (min) | peak MiB | finite losses |', '|---|---|---|---|---|']
    for precision, r in train['results'].items():
        if 'skipped' in r:
            lines.append(f"| {precision} | skipped: {r['skipped']} | | | |")
        else:
            lines.append(f"| {precision} | {r['ms_per_step_median']} | {r['ms_per_step_min']} | {r['peak_mib']} | "
                         f"{r['finite']} |")
    inf = report['inference']
    lines += ['', f"## Inference ({inf['image']}, torch backend, tile_pad {inf['tile_pad']}, best of "
              f"{inf['repeats']}; budget {inf['budget_gib']} GiB; fp32 against the CPU's fp32: "
              f"{inf['fp32_vs_cpu_fp32_psnr_db_512px']} dB)", '',
              '| precision, tile | MP/s | peak MiB | bytes/pixel untiled (budget figure) | PSNR vs fp32 dB |',
              '|---|---|---|---|---|']
    for key, r in inf['results'].items():
        if 'skipped' in r:
            lines.append(f"| {key} | skipped: {r['skipped']} | | | |")
        else:
            per_pixel = f"{r['bytes_per_pixel']} ({r['budget_figure']})" if 'bytes_per_pixel' in r else ''
            lines.append(f"| {key} | {r['mp_per_s']} | {r['peak_mib']} | {per_pixel} | "
                         f"{r.get('psnr_vs_fp32_db', '')} |")
    return '\n'.join(lines) + '\n'
