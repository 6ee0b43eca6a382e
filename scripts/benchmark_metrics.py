"""Seconds per image of the no-reference metrics of Table 1 on one image (default: the first 4 MP VV image of the
shared assets): NIQE (BasicSR), LOE against a brightened copy, UNIQUE on the CPU.

UNIQUE runs the real network (ResNet-34, bilinear pooling) with randomly initialised weights written to a temporary
file: its cost does not depend on the weights' values, and no UNIQUE weights are available offline. The first UNIQUE
call, which reads the file and builds the network, is reported apart. Best of --repeats after one warm-up call.

    .venv/bin/python scripts/benchmark_metrics.py [--image PATH] [--threads 1] [--repeats 3] [--json out.json]
"""
import argparse
import json
import os.path as osp
import tempfile
import time

import cv2
import numpy as np
import torch

from sclle_basicsr.benchmarks.machine import describe_machine
from sclle_basicsr.utils.assets import asset_path
from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.image_files import list_images


def best_of(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--image', default=None, help='default: the first image of the shared assets\' VV set')
    p.add_argument('--threads', type=int, default=1, help='torch and OpenCV threads')
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--json', default=None, help='also write the report here')
    args = p.parse_args(argv)
    path = args.image or next(iter(list_images(asset_path('lle_testsets', 'VV'))), None)
    img = cv2.imread(path, cv2.IMREAD_COLOR) if path else None
    if img is None:
        raise SystemExit(f'error: cannot read image {path} (option --image, or set SCLLE_ASSETS)')
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    from basicsr.metrics import calculate_niqe

    from sclle_basicsr.metrics import calculate_loe, calculate_unique, load_unique
    from sclle_basicsr.metrics.unique_metric import UNIQUENet, resized_size
    x = np.arange(256)
    bright = np.round(x + 0.8 * x * (1 - x / 255)).astype(np.uint8)[img]  # a Zero-DCE curve
    report = {'machine': describe_machine(args.threads), 'image': path,
              'size': f'{img.shape[1]}x{img.shape[0]}', 'megapixels': img.shape[0] * img.shape[1] / 1e6,
              'unique_input': 'x'.join(map(str, (resized_size(*img.shape[:2]) or img.shape[:2])[::-1])),
              'seconds': {}}
    seconds = report['seconds']
    seconds['loe'] = best_of(lambda: calculate_loe(bright, lq=img), args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        weights = osp.join(tmp, 'UNIQUE.pt')
        torch.manual_seed(0)
        torch.save(UNIQUENet().state_dict(), weights)
        start = time.perf_counter()
        calculate_unique(img, weights=weights)
        seconds['unique_first_call'] = time.perf_counter() - start
        seconds['unique'] = best_of(lambda: calculate_unique(img, weights=weights), args.repeats)
        load_unique.cache_clear()
    seconds['niqe'] = best_of(lambda: calculate_niqe(img, crop_border=0, input_order='HWC', convert_to='y'),
                              max(1, args.repeats - 1))
    print(f'{report["size"]} ({report["megapixels"]:.1f} MP) {path}, {args.threads} thread(s), '
          f'{report["machine"]["cpu"]}')
    for name in ('niqe', 'loe', 'unique', 'unique_first_call'):
        print(f'  {name:18s} {seconds[name]:8.3f} s')
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=1))


if __name__ == '__main__':
    main()
