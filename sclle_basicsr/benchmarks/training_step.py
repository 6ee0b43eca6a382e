"""One SCL-LLE training step, the project's against the same losses composed naively, measured side by side.

The project's step (``SCLLLEModel.optimize_parameters``) shares one VGG-16 forward of the output among the VGG
losses and runs the references without autograd; the naive step gives L_c and L_fr a VGG-16 each and runs every
input through it in grad mode.  Both start from the same weights and data, so their losses must agree and their
time and memory are comparable.  Steps alternate (project, naive, project, ...) so that load from other processes
hits both alike.
"""
import copy
import functools
import os
import statistics
import sys
import time
from contextlib import nullcontext

import torch
from basicsr.models import build_model

from sclle_basicsr.archs.vgg_arch import FrozenVGG16Features
from sclle_basicsr.benchmarks.machine import describe_machine
from sclle_basicsr.benchmarks.memory import PeakRSS
from sclle_basicsr.utils.assets import asset_path

LOSS_OPTS = {
    'contrastive_opt': {'type': 'SCLContrastiveLoss', 'loss_weight': 1.0},
    'semantic_opt': {'type': 'SemanticBrightnessLoss', 'loss_weight': 1.0},
    'retention_opt': {'type': 'FeatureRetentionLoss', 'loss_weight': 1.0, 'layer': 'relu4_3'},
    'color_opt': {'type': 'ColorConstancyLoss', 'loss_weight': 1.0},
}
AMP = {'bf16': torch.bfloat16, 'fp16': torch.float16}
_progress = functools.partial(print, file=sys.stderr, flush=True)


def vgg_opt():
    """The Caffe VGG-16 from the shared assets when present, else random weights (same cost)."""
    path = asset_path('weights', 'vgg16_imagenet_caffe_bgr_features.pth')
    if os.path.isfile(path):
        return {'weights_path': path, 'weights_format': 'caffe_bgr'}
    return {'weights_format': 'random'}


def model_options(device, amp):
    """The option dict train.py would build from a YAML file with these train settings."""
    train = dict(copy.deepcopy(LOSS_OPTS), vgg_opt=vgg_opt(), segmentor_opt={'allow_random_init': True},
                 optim_g={'type': 'Adam', 'lr': 1e-4, 'weight_decay': 1e-4},
                 scheduler={'type': 'MultiStepLR', 'milestones': [10**9], 'gamma': 1.0},
                 grad_clip_norm=0.1, ema_decay=0)
    if amp:
        train['amp'] = {'dtype': amp}
    return {'name': 'benchmark_training', 'model_type': 'SCLLLEModel', 'scale': 1, 'is_train': True,
            'dist': False, 'rank': 0, 'world_size': 1, 'num_gpu': 1 if device == 'cuda' else 0,
            'network_g': {'type': 'DCENet'}, 'path': {'pretrain_network_g': None, 'strict_load_g': True,
                                                      'resume_state': None}, 'train': train}


def make_batch(batch, size, device, seed=0):
    """Random stand-ins for one UnpairedContrastiveDataset batch (cost does not depend on content)."""
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    data = {'lq': rand(batch, 3, size, size) * 0.2, 'pos': rand(batch, 3, size, size),
            'neg': [rand(batch, 3, size, size) * 0.1, rand(batch, 3, size, size) * 0.1 + 0.9],
            'label': torch.randint(0, 19, (batch, size, size), generator=g)}
    return {k: [n.to(device) for n in v] if isinstance(v, list) else v.to(device) for k, v in data.items()}


class NaiveStep:
    """The losses of ``model.scl_losses`` composed without sharing: own VGG per VGG loss, one pass per input."""

    def __init__(self, model, opt):
        self.losses = model.scl_losses.losses
        self.net = copy.deepcopy(model.get_bare_model(model.net_g))
        self.optimizer = torch.optim.Adam(self.net.parameters(), **{k: v for k, v in opt['optim_g'].items()
                                                                    if k != 'type'})
        self.clip = opt['grad_clip_norm']
        shared = model.scl_losses.vgg
        self.extractors = {}
        for name in ('contrastive', 'retention'):
            ext = FrozenVGG16Features(layers=self.losses[name].vgg_layers, **opt['vgg_opt']).to(model.device)
            # same weights as the shared extractor (matters for weights_format 'random')
            ext.features.load_state_dict(shared.features[:len(ext.features)].state_dict())
            self.extractors[name] = ext
        self.amp = model.amp_dtype
        self.device = model.device

    def __call__(self, data):
        self.optimizer.zero_grad(set_to_none=True)
        autocast = torch.autocast(self.device.type, dtype=self.amp) if self.amp else nullcontext()
        with autocast:
            out, curves = self.net(data['lq'], return_curves=True)
            total = 0
            for name, loss in self.losses.items():
                if name == 'contrastive':
                    ext, layers = self.extractors[name], loss.vgg_layers
                    pos_f = ext(data['pos'], layers)
                    neg_f = [ext(n, layers) for n in data['neg']]
                    total = total + loss.loss_from_features(out, ext(out, layers), data['pos'], pos_f, data['neg'],
                                                            neg_f)
                elif name == 'retention':
                    ext, layers = self.extractors[name], loss.vgg_layers
                    total = total + loss.loss_from_features(ext(out, layers), ext(data['lq'], layers))
                elif name == 'semantic':
                    total = total + loss(out, label=data['label'])
                else:
                    total = total + loss(out, curves=curves)
        total.backward()  # fp32 or bf16 only (no GradScaler needed: fp16 is refused for the naive path)
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.clip)
        self.optimizer.step()
        return float(total.detach())


def project_step(model, data):
    model.feed_data(data)
    model.optimize_parameters(0)
    return float(model.log_dict['l_total'])


def measure(step, device):
    """One step: wall and CPU seconds, peak memory (MB) and the loss value."""
    if device.type == 'cuda':
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        watcher = nullcontext()
    else:
        watcher = PeakRSS()
    with watcher as rss:
        start, cpu = time.perf_counter(), time.process_time()
        value = step()
        if device.type == 'cuda':
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if device.type == 'cuda':
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = (rss.peak - rss.start) / 2**20
    return {'wall_s': wall, 'cpu_s': cpu, 'peak_mb': peak, 'l_total': value}


def summarise(runs):
    med = lambda key: statistics.median(r[key] for r in runs)  # noqa: E731
    return {'ms_per_iter_median': round(1000 * med('wall_s'), 1),
            'ms_per_iter_min': round(1000 * min(r['wall_s'] for r in runs), 1),
            'cpu_ms_per_iter_median': round(1000 * med('cpu_s'), 1),
            'peak_mb_over_start': round(max(r['peak_mb'] for r in runs), 1),
            'l_total_per_step': [round(r['l_total'], 6) for r in runs]}


def run_training_benchmark(size=384, batch=2, repeats=3, device='cpu', amp=None, log=_progress):
    """Time ``repeats`` steps of each path on a ``batch`` of ``size`` x ``size`` images; returns the report.

    ``amp`` (``'bf16'``) runs both paths under autocast; fp16 would need a GradScaler the naive path does not have.
    Progress goes to ``log`` (standard error by default).
    """
    if amp == 'fp16':
        raise ValueError('amp fp16 needs a GradScaler the naive path does not have; compare with bf16')
    torch.manual_seed(0)
    opt = model_options(device, amp)
    model = build_model(opt)
    naive = NaiveStep(model, opt['train'])
    data = make_batch(batch, size, model.device)
    runs = {'project': [], 'naive': []}
    steps = {'project': lambda: project_step(model, data), 'naive': lambda: naive(data)}
    for name in runs:  # warm-up, not counted (first-call allocations, oneDNN primitive creation)
        log(f'warm-up {name} ...')
        measure(steps[name], model.device)
    # re-sync weights: both paths then take the same steps from the same point
    naive.net.load_state_dict(model.get_bare_model(model.net_g).state_dict())
    naive.optimizer.load_state_dict(model.optimizer_g.state_dict())
    for i in range(repeats):
        for name in runs:
            runs[name].append(measure(steps[name], model.device))
            log(f'repeat {i + 1}/{repeats} {name}: {runs[name][-1]["wall_s"]:.2f} s')

    results = {name: summarise(r) for name, r in runs.items()}
    results['speedup_naive_over_project'] = {
        'wall_median': round(results['naive']['ms_per_iter_median'] / results['project']['ms_per_iter_median'], 3),
        'cpu_median': round(results['naive']['cpu_ms_per_iter_median'] /
                            results['project']['cpu_ms_per_iter_median'], 3)}
    machine = describe_machine(torch.get_num_threads())
    machine.update(gpu=torch.cuda.get_device_name() if device == 'cuda' else None,
                   loadavg_1min_end=os.getloadavg()[0])
    return {'machine': machine,
            'setting': {'batch': batch, 'size': size, 'repeats': repeats, 'amp': amp, 'losses': list(LOSS_OPTS),
                        'vgg': opt['train']['vgg_opt']['weights_format'],
                        'segmentor': 'deeplabv3plus_r50-d8 Cityscapes config, random weights'},
            'results': results}


def table(report):
    """The report's results as a Markdown table."""
    res = report['results']
    lines = ['| path | ms/iter (median) | ms/iter (min) | CPU ms/iter | peak memory MB over start | naive / project |',
             '|---|---|---|---|---|---|']
    for name in ('project', 'naive'):
        r = res[name]
        ratio = res['speedup_naive_over_project']['wall_median'] if name == 'project' else 1.0
        lines.append(f"| {name} | {r['ms_per_iter_median']} | {r['ms_per_iter_min']} | "
                     f"{r['cpu_ms_per_iter_median']} | {r['peak_mb_over_start']} | {ratio} |")
    return '\n'.join(lines)
