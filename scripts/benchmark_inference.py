"""Race the project's inference backends against the runtimes they wrap, side by side in one run.

Configurations, at about 0.5, 1, 4 and 12 megapixels (4:3 images; above --tile_above MP every one runs tiled, pad 8:
untiled, one runtime holds about 1 GB (OpenVINO fp32) to 1.4 GB (ONNX Runtime) per megapixel, and the race holds six):

  eager          the released code's path: DCENet's forward in eager PyTorch, fp32, NCHW
  torch-fp32/bf16    the project: enhance_tensor(backend='torch')
  onnxruntime-fp32   the project: enhance_tensor(backend='onnxruntime')
  openvino-fp32/bf16 the project: enhance_tensor(backend='openvino')
  peer-ort-fp32      peer: an ONNX Runtime session on the graph sclle-export writes, called directly on NumPy
  peer-ov-fp32/bf16  peer: OpenVINO compiled from the same graph for each input shape, called directly (bf16:
                     inference precision hint)

Each is called twice first (the OpenVINO backend compiles a static model when a shape comes again), then all run
round-robin (one of each in a shuffled order, then again) so that load from other processes hits them alike. Reported:
the minimum over repeats in MP/s; the ratio to the best peer of the same precision, as the median over rounds of the
peer's time over the configuration's (paired within a round); the PSNR of reduced precision against torch fp32; the
peak RSS of a fresh process that loads the model and runs the configuration once (whole process, so one path's
allocator caches cannot inflate another's). Every backend and peer gets --threads. The targets (the default fp32
path >= 0.97x the fastest fp32 peer; the best reduced-precision path >= 60 dB and >= 0.97x OpenVINO bf16: equal
within the noise of a shared machine; 12 MP tiled under 1.5 GB) are checked at the end. Prints a table, then the
JSON (--json).

  .venv/bin/python scripts/benchmark_inference.py                           # everything (about 12 minutes)
  .venv/bin/python scripts/benchmark_inference.py --sizes 0.5,1 --no_rss    # quick look
"""
import argparse
import json

from sclle_basicsr.benchmarks.inference_paths import CONFIGS
from sclle_basicsr.benchmarks.inference_race import run_race, table, target_lines
from sclle_basicsr.utils.atomic_files import write_atomic


def config_list(text):
    """``--configs``: comma-separated names from CONFIGS."""
    names = [c for c in text.split(',') if c]
    for c in names:
        if c not in CONFIGS:
            raise argparse.ArgumentTypeError(f'unknown configuration {c} (choose from {", ".join(CONFIGS)})')
    return names


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--sizes', default='0.5,1,4,12', help='megapixels (4:3 images)')
    p.add_argument('--configs', type=config_list, default=','.join(CONFIGS), help='subset of: ' + ', '.join(CONFIGS))
    p.add_argument('--repeats', type=int, default=5, help='timed runs per configuration up to 1 MP')
    p.add_argument('--large_repeats', type=int, default=3, help='timed runs per configuration above 1 MP')
    p.add_argument('--tile', type=int, default=384, help='tile used above --tile_above MP (all configurations)')
    p.add_argument('--tile_above', type=float, default=1.0, help='tile images larger than this many MP')
    p.add_argument('--threads', type=int, default=2, help='threads for every backend and peer')
    p.add_argument('--matmul_size', type=int, default=4096)
    p.add_argument('--no_rss', action='store_true', help='skip the peak-RSS subprocesses')
    p.add_argument('--model_path', default=None, help='default: the released SCL-LLE weights, else random')
    p.add_argument('--json', default=None, help='also write the JSON here')
    args = p.parse_args(argv)

    report = run_race([float(s) for s in args.sizes.split(',') if s], args.configs, repeats=args.repeats,
                      large_repeats=args.large_repeats, tile=args.tile, tile_above=args.tile_above,
                      threads=args.threads, matmul_size=args.matmul_size, rss=not args.no_rss,
                      model_path=args.model_path)
    print()
    print(table(report['results']))
    print()
    for line in target_lines(report['targets']):
        print(line)
    print()
    print(json.dumps(report, indent=1))
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=1))
    return report


if __name__ == '__main__':
    main()
