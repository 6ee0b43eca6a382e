"""Time one SCL-LLE loss evaluation (forward + backward of L_c, L_sc, L_fr, L_cc) on CPU: shared VGG pass vs naive.

shared: SCLLosses -- one VGG forward of pred with autograd (union of layers, up to relu4_3) and one no-grad pass
        for lq, the positive and the negatives together.
naive:  each VGG loss owns its extractor and runs it on pred and on each reference separately, references in
        grad mode (as a straightforward composition would): pred goes through VGG twice.
The semantic and colour losses are the same in both.  Prints JSON (median seconds over --repeats, shared and naive
alternating, after a warm-up of each).

Weights: the Caffe VGG-16 from $SCLLE_ASSETS (default ../shared/assets) if present, else random (same cost); the
segmentor is the default Cityscapes DeepLabv3+ R50-D8 config with random weights (no checkpoint is available
offline; the cost is the same).

    python scripts/bench_losses.py [--size 384] [--batch 2] [--repeats 3] [--threads N]
"""
import argparse
import json
import os
import os.path as osp
import platform
import statistics
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import sclle_basicsr  # noqa: E402,F401  (compat fixes, registration)
import torch  # noqa: E402

from sclle_basicsr.archs.vgg_arch import FrozenVGG16Features  # noqa: E402
from sclle_basicsr.losses.scl_losses import SCLLosses  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def vgg_opt():
    assets = os.environ.get('SCLLE_ASSETS', osp.join(REPO, '..', 'shared', 'assets'))
    path = osp.join(assets, 'weights', 'vgg16_imagenet_caffe_bgr_features.pth')
    if osp.isfile(path):
        return {'weights_path': path, 'weights_format': 'caffe_bgr'}
    return {'weights_format': 'random'}


def make_inputs(batch, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    rand = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    return dict(
        pred=rand(batch, 3, size, size),
        curves=rand(batch, 24, size, size) * 2 - 1,
        lq=rand(batch, 3, size, size) * 0.2,
        pos=rand(batch, 3, size, size),
        neg=[rand(batch, 3, size, size) * 0.1, rand(batch, 3, size, size) * 0.1 + 0.9],
        label=torch.randint(0, 19, (batch, size, size), generator=g))


def shared_step(losses, data):
    pred = data['pred'].clone().requires_grad_(True)
    curves = data['curves'].clone().requires_grad_(True)
    total, _ = losses(pred, lq=data['lq'], curves=curves, pos=data['pos'], neg=data['neg'], label=data['label'])
    total.backward()
    return float(total.detach())


def naive_step(losses, extractors, data):
    """Same losses, composed naively: own extractor per VGG loss, every reference its own pass, grad mode on."""
    pred = data['pred'].clone().requires_grad_(True)
    curves = data['curves'].clone().requires_grad_(True)
    total = 0
    for name, loss in losses.losses.items():
        if name == 'contrastive':
            ext = extractors['contrastive']
            ref = [ext(x, loss.vgg_layers) for x in [data['pos']] + data['neg']]
            total = total + loss.loss_from_features(pred, ext(pred, loss.vgg_layers), data['pos'], ref[0],
                                                    data['neg'], ref[1:])
        elif name == 'retention':
            ext = extractors['retention']
            total = total + loss.loss_from_features(ext(pred, loss.vgg_layers), ext(data['lq'], loss.vgg_layers))
        elif name == 'semantic':
            total = total + loss(pred, data['label'])
        else:
            total = total + loss(pred, curves)
    total.backward()
    return float(total.detach())


def timed_pair(fn_a, fn_b, repeats):
    """Warm both up, then alternate a, b, a, b ... so load drift on a shared machine hits both alike."""
    fn_a(), fn_b()
    times_a, times_b = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, times_a), (fn_b, times_b)):
            start, cpu_start = time.perf_counter(), time.process_time()
            value = fn()
            times.append((time.perf_counter() - start, time.process_time() - cpu_start))
            if fn is fn_a:
                value_a = value
            else:
                value_b = value
    return (times_a, value_a), (times_b, value_b)


def summary(times):
    """Median wall and CPU (process, all threads) seconds; CPU time is the steadier one on a shared machine."""
    return {'wall_s': round(statistics.median(t[0] for t in times), 3),
            'cpu_s': round(statistics.median(t[1] for t in times), 3),
            'wall_runs_s': [round(t[0], 3) for t in times], 'cpu_runs_s': [round(t[1], 3) for t in times]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=384)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    opt = {
        'contrastive_opt': {'type': 'SCLContrastiveLoss'},
        'semantic_opt': {'type': 'SemanticBrightnessLoss'},
        'retention_opt': {'type': 'FeatureRetentionLoss'},
        'color_opt': {'type': 'ColorConstancyLoss'},
        'vgg_opt': vgg_opt(),
        'segmentor_opt': {'allow_random_init': True},
    }
    losses = SCLLosses(opt)
    vgg_only = SCLLosses({k: v for k, v in opt.items() if k not in ('semantic_opt', 'segmentor_opt')})
    vgg_only.vgg = losses.vgg  # same weights
    for loss in vgg_only.losses.values():
        if hasattr(loss, 'attach_extractor'):
            loss.attach_extractor(losses.vgg)
    extractors = {
        name: FrozenVGG16Features(layers=losses.losses[name].vgg_layers, **opt['vgg_opt'])
        for name in ('contrastive', 'retention')
    }
    data = make_inputs(args.batch, args.size)

    result = {
        'what': 'one loss evaluation, forward + backward, CPU',
        'batch': args.batch,
        'size': args.size,
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
        'cpu': platform.processor() or platform.machine(),
        'load_avg_1min_before': os.getloadavg()[0],
        'vgg': opt['vgg_opt'].get('weights_format'),
        'segmentor': 'deeplabv3plus_r50-d8 cityscapes config, random weights',
        'repeats': args.repeats,
    }
    for label, target in (('all_four_losses', losses), ('vgg_losses_only', vgg_only)):
        (shared, v1), (naive, v2) = timed_pair(
            lambda: shared_step(target, data), lambda: naive_step(target, extractors, data), args.repeats)
        shared, naive = summary(shared), summary(naive)
        result[label] = {
            'losses': list(target.log_keys.values()),
            'shared': shared,
            'naive': naive,
            'speedup_wall': round(naive['wall_s'] / shared['wall_s'], 3),
            'speedup_cpu': round(naive['cpu_s'] / shared['cpu_s'], 3),
            'total_loss_shared_vs_naive': [v1, v2],
        }
    result['load_avg_1min_after'] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
