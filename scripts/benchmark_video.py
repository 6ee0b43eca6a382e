"""Frames per second of ``sclle-enhance`` on video at 720p and 1080p, for each CPU precision, end to end (decode,
enhance, encode with libx264 crf 18, mux) and for the network alone, with the peak resident memory; the clips are
pans across a BDD100K night frame (the shared assets; a synthetic still without them).  Prints the machine
(CPU model and flags), a Markdown table (docs/video.md) and, with --json, the rows.

    python scripts/benchmark_video.py --threads 2          # about 8 minutes on 2 busy cores
"""
import argparse
import json
import os.path as osp
import sys
import tempfile

import numpy as np

from sclle_basicsr.benchmarks.machine import describe_machine, runtime_version
from sclle_basicsr.benchmarks.video import SIZES, frame_size, markdown_table, run_benchmark
from sclle_basicsr.enhance.video_samples import synthetic_still
from sclle_basicsr.utils.assets import asset_path
from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.image_files import list_images


def still_image():
    """The first BDD night frame (RGB uint8) and its name, or a synthetic still when the assets are absent."""
    from PIL import Image
    folder = asset_path('lowlight_unlabelled', 'BDD_night')
    paths = list_images(folder) if osp.isdir(folder) else []
    if not paths:
        return synthetic_still(1600, 900), 'synthetic still'
    return np.asarray(Image.open(paths[len(paths) // 2]).convert('RGB')), osp.basename(paths[len(paths) // 2])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model_path', default=asset_path('weights', 'sclle_official.pth'))
    p.add_argument('--sizes', nargs='+', default=list(SIZES), help=f'{", ".join(SIZES)} or WxH')
    p.add_argument('--precisions', nargs='+', default=['fp32', 'bf16'], choices=['fp32', 'bf16'])
    p.add_argument('--frames', type=int, default=16)
    p.add_argument('--long_frames', type=int, default=48,
                   help='the first size and precision also on a clip this long (memory flat in length); 0: no')
    p.add_argument('--batch', type=int, default=0, help='--video_batch (0: by frame size, as sclle-enhance)')
    p.add_argument('--threads', type=int, default=2, help='torch and runtime threads')
    p.add_argument('--json', default=None)
    args = p.parse_args(argv)
    for size in args.sizes:
        try:
            frame_size(size)
        except ValueError as err:
            p.error(str(err))
    import torch
    if not osp.isfile(args.model_path):
        sys.exit(f'error: --model_path {args.model_path} not found')
    torch.set_num_threads(args.threads)
    machine = describe_machine(args.threads)
    machine.update(onnxruntime=runtime_version('onnxruntime'), openvino=runtime_version('openvino'))
    import av
    machine['av'] = av.__version__
    still, source = still_image()
    print(f'CPU: {machine["cpu"]} ({machine["os_cpus"]} logical CPUs, flags {" ".join(machine["flags"])}); '
          f'{args.threads} threads; torch {machine["torch"]}, onnxruntime {machine["onnxruntime"]}, openvino '
          f'{machine["openvino"]}, PyAV {machine["av"]}; clips: pans across {source}',
          flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        rows = run_benchmark(args.model_path, still, workdir, args.sizes, args.precisions, args.frames, args.batch,
                             args.long_frames or None)
    print(markdown_table(rows))
    if args.json:
        write_atomic(args.json, json.dumps({'machine': machine, 'rows': rows}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
