"""Run one inference configuration once in this fresh process and print its peak resident memory as JSON.

    python -m sclle_basicsr.benchmarks.rss_child CONFIG MEGAPIXELS [--threads N] [--tile T] [--tile_above MP]
        [--model_path PATH]

A process of its own for each measurement, so that one configuration's allocator caches cannot inflate another's
peak; :func:`sclle_basicsr.benchmarks.inference_race.measure_rss` starts it.
"""
import argparse
import json

import torch

from sclle_basicsr.benchmarks.inference_paths import CONFIGS, load_model, low_light_image, make_runner
from sclle_basicsr.benchmarks.memory import process_peak_rss_kib, status_kib
from sclle_basicsr.inference.onnx_graph import onnx_bytes


def peak_rss_of_one_run(name, mp, threads, tile, tile_above, model_path=None):
    """``{'peak_rss_mb', 'rss_before_run_mb'}`` of this process around one run of configuration ``name``."""
    torch.set_num_threads(threads)
    net, _ = load_model(model_path)
    x = low_light_image(mp)
    run = make_runner(name, net, onnx_bytes(net), threads)
    before = status_kib('VmRSS')
    run(x, tile if mp > tile_above else 0)
    return {'peak_rss_mb': round(process_peak_rss_kib() / 1024), 'rss_before_run_mb': round(before / 1024)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', choices=CONFIGS)
    p.add_argument('mp', type=float, help='megapixels (4:3 image)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--tile', type=int, default=384)
    p.add_argument('--tile_above', type=float, default=1.0)
    p.add_argument('--model_path', default=None)
    args = p.parse_args(argv)
    print(json.dumps(peak_rss_of_one_run(args.config, args.mp, args.threads, args.tile, args.tile_above,
                                         args.model_path)))


if __name__ == '__main__':
    main()
