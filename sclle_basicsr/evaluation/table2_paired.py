"""Table 2: paired PSNR / SSIM / LPIPS on a SICE Part2 layout (``<root>/low``, ``<root>/gt``, matched by file stem).

With a ground truth the enhanced image can be compared pixel by pixel (PSNR), by local structure (SSIM) and by deep
features close to human judgement (LPIPS).  PSNR and SSIM come from ``basicsr.metrics`` on 8-bit **RGB** images (all
three channels, ``test_y_channel=False``, ``crop_border=0``), since enhancement changes colour as well as
brightness; LPIPS from the ``lpips`` package, AlexNet or VGG backbone loaded from a local torchvision state dict and
the package's own linear layers v0.1, so that nothing is downloaded.  The enhanced image is rounded to 8 bits first,
as a saved result would be.
"""
import os.path as osp
import time

import torch

from sclle_basicsr.evaluation.common import (
    EvaluationError,
    bgr_uint8_to_tensor,
    read_color,
    tensor_to_uint8_bgr,
    write_table,
)
from sclle_basicsr.evaluation.methods import (
    NetworkConfig,
    describe,
    enhance,
    inference_options,
    load_method,
    require_input_size,
)
from sclle_basicsr.inference import CheckpointError
from sclle_basicsr.metrics.unscorable import mean_or_nan, score_or_none
from sclle_basicsr.utils.checkpoints import read_features_state_dict
from sclle_basicsr.utils.image_files import list_images


def match_pairs(root):
    """``[(stem, low_path, gt_path)]`` for ``<root>/low`` and ``<root>/gt`` matched by file stem (checked)."""
    low_dir, gt_dir = osp.join(root, 'low'), osp.join(root, 'gt')
    for d in (low_dir, gt_dir):
        if not osp.isdir(d):
            raise EvaluationError(f'folder {d} not found (expected <root>/low and <root>/gt, option --dataroot)')

    def by_stem(folder):
        found = {}
        for p in list_images(folder):
            stem = osp.splitext(osp.basename(p))[0]
            if stem in found:
                raise EvaluationError(f'two images with stem {stem!r} in {folder}')
            found[stem] = p
        return found

    low, gt = by_stem(low_dir), by_stem(gt_dir)
    if not low:
        raise EvaluationError(f'no images in {low_dir}')
    only_low, only_gt = sorted(set(low) - set(gt)), sorted(set(gt) - set(low))
    if only_low or only_gt:
        raise EvaluationError(f'unmatched files: in {low_dir} without ground truth: {only_low or "none"}; '
                              f'in {gt_dir} without low-light input: {only_gt or "none"}')
    return [(s, low[s], gt[s]) for s in sorted(low)]


def build_lpips(backbone_path, net='alex', device='cpu'):
    """LPIPS (v0.1 linear layers shipped in the ``lpips`` package) with the backbone from a local state dict.

    ``backbone_path``: a torchvision ``alexnet()`` / ``vgg16()`` state dict (full model, ``features.*`` keys) or
    of its ``features`` module alone (``0.weight`` ...), bare or in a checkpoint dict.  Nothing is downloaded.
    """
    import lpips
    if not backbone_path:
        raise EvaluationError('LPIPS needs the backbone weights: pass --lpips_backbone PATH (a torchvision '
                              f'{net} state dict) or --no_lpips')
    if not osp.isfile(backbone_path):
        raise EvaluationError(f'LPIPS backbone {backbone_path} (option --lpips_backbone) not found')
    try:
        feats = read_features_state_dict(backbone_path)
    except CheckpointError as err:
        raise EvaluationError(f'LPIPS backbone (option --lpips_backbone) {str(err).splitlines()[0]}') from err
    model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    own = {}
    for slice_name, seq in model.net.named_children():
        if not slice_name.startswith('slice'):
            continue
        for idx, _ in seq.named_children():
            for key, value in seq.state_dict().items():
                if key.startswith(f'{idx}.'):
                    own[f'{slice_name}.{key}'] = (key, value)
    new_state, missing = {}, []
    for full, (key, value) in own.items():
        if key not in feats or tuple(feats[key].shape) != tuple(value.shape):
            missing.append(key)
        else:
            new_state[full] = feats[key]
    if missing:
        raise EvaluationError(f'LPIPS backbone {backbone_path} (option --lpips_backbone) is not a torchvision {net} '
                              f'state dict: missing or mis-shaped features.{", features.".join(missing)}')
    model.net.load_state_dict(new_state, strict=True)
    return model.eval().requires_grad_(False).to(device)


def _lpips(model, out_bgr, gt_bgr, device):
    with torch.no_grad():
        return model(bgr_uint8_to_tensor(out_bgr).to(device), bgr_uint8_to_tensor(gt_bgr).to(device),
                     normalize=True).mean()


def enhanced_image(net, source, low, low_path, device, tile):
    """``low`` (BGR uint8) enhanced by ``net`` and rounded to 8 bits; a network whose output is not the input's size
    is an error (the ground truth has the input's size)."""
    x = bgr_uint8_to_tensor(low).to(device)
    y = enhance(net, x, f'{describe(source)} on {low_path}', **inference_options(source, tile))
    return tensor_to_uint8_bgr(require_input_size(y, x, source, low_path, 'Table 2 compares with the ground truth'))


def run_table2(methods, dataroot, out, lpips_backbone=None, lpips_net='alex', no_lpips=False, max_images=None,
               device='cpu', tile=0, log=print):
    """PSNR / SSIM (RGB, crop 0) / LPIPS per method on a paired set; writes ``table2_paired.{md,csv}``.

    ``methods``: ``(name, source)`` pairs (see :mod:`.methods`); ``tile`` applies to DCE-Net checkpoints.
    """
    from basicsr.metrics import calculate_psnr, calculate_ssim
    pairs = match_pairs(dataroot)[:max_images or None]
    lp = None if no_lpips else build_lpips(lpips_backbone, lpips_net, device)
    rows, left_out = [], []
    for name, source in methods:
        net = load_method(source, device)
        start = time.perf_counter()
        scores = {'PSNR': [], 'SSIM': [], 'LPIPS': []}
        for i, (stem, low_path, gt_path) in enumerate(pairs, 1):
            low, gt = read_color(low_path), read_color(gt_path)
            if low.shape != gt.shape:
                raise EvaluationError(f'size mismatch for {stem}: {low_path} is {low.shape[1]}x{low.shape[0]}, '
                                      f'{gt_path} is {gt.shape[1]}x{gt.shape[0]}')
            out_img = enhanced_image(net, source, low, low_path, device, tile)
            metrics = {
                'PSNR': lambda: calculate_psnr(out_img, gt, crop_border=0, input_order='HWC', test_y_channel=False),
                'SSIM': lambda: calculate_ssim(out_img, gt, crop_border=0, input_order='HWC', test_y_channel=False)}
            if lp is not None:
                metrics['LPIPS'] = lambda: _lpips(lp, out_img, gt, device)
            found = {}
            for metric, compute in metrics.items():
                found[metric] = score_or_none(metric, compute, low_path, lambda msg: log(f'[table2] {name}: {msg}'))
                if found[metric] is not None:
                    scores[metric].append(found[metric])
            log(f'[table2] {name} {i}/{len(pairs)} {stem}: '
                + ' '.join(f'{m} {v:.4f}' if v is not None else f'{m} -' for m, v in found.items()))
        row = {'method': name, 'images': len(pairs), 'seconds': time.perf_counter() - start}
        for metric, values in scores.items():
            row[metric] = mean_or_nan(values) if metric != 'LPIPS' or lp is not None else None
            if (metric != 'LPIPS' or lp is not None) and len(values) < len(pairs):
                left_out.append(f'{name} {metric}: {len(pairs) - len(values)}')
                log(f'[table2] {name}: {metric} left out {len(pairs) - len(values)} of {len(pairs)} image(s) '
                    '(cannot be scored, named above)')
        rows.append(row)
    notes = [f'{len(pairs)} pairs from {dataroot} (low/ and gt/ matched by file stem).',
             'PSNR, SSIM: basicsr.metrics on 8-bit RGB (all three channels, test_y_channel=False, crop_border=0), '
             'mean over images. LPIPS: lpips package v0.1, '
             + ('skipped (--no_lpips).' if no_lpips else f'{lpips_net} backbone from {lpips_backbone}, inputs in '
                                                           '[-1, 1], mean over images; lower is better.'),
             'Enhanced images are rounded to 8 bits before the metrics; identity = the low-light input.']
    configs = [f'{name}: {source.options_file}' for name, source in methods if isinstance(source, NetworkConfig)]
    if configs:
        notes.append('--configs networks (network_g and path of the option file, built by BasicSR\'s '
                     'build_network, run whole on PyTorch): ' + ', '.join(configs) + '.')
    if left_out:
        notes.append('Images a metric cannot score are left out of its mean and named in the log; left out: '
                     + ', '.join(left_out) + '.')
    md = write_table(rows, ['method', 'PSNR', 'SSIM', 'LPIPS', 'images', 'seconds'],
                     osp.join(out, 'table2_paired.md'), osp.join(out, 'table2_paired.csv'),
                     'Table 2: paired evaluation', notes, {'PSNR': '.3f', 'seconds': '.1f'})
    return rows, md
