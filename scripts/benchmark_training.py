"""Benchmark one SCL-LLE training step (forward, all four losses, backward, grad clip, Adam step): project vs naive.

Measured side by side in one run, alternating project, naive, project, naive ... so that load from other
processes hits both alike:

  project: ``SCLLLEModel.optimize_parameters`` itself (built through BasicSR's ``build_model`` from an option
           dict): one DCENet forward giving image and curves, SCLLosses with ONE VGG-16 forward of the output with
           autograd and ONE no-grad pass for lq, positive and negatives, one segmentor.
  naive:   the same losses composed the straightforward way: L_c and L_fr each own a VGG-16 and run it on the
           output and on each of their references separately, references in grad mode; same DCENet start, same
           Adam, same clip.  L_sc and L_cc are the same modules.

Reports per configuration: ms per iteration (median and min over --repeats, wall and process CPU), the peak
resident memory during a step (CPU: sampled from /proc/self/statm, freed heap trimmed before each step; GPU:
torch.cuda.max_memory_allocated), the ratio naive / project, and each path's l_total per step (they start from the
same weights and data, so they must agree to rounding).  Prints a table, then JSON (also written to --json).

Weights: the Caffe VGG-16 from $SCLLE_ASSETS (default ../shared/assets) if present, else random (same cost);
the segmentor is the default Cityscapes DeepLabv3+ R50-D8 config with random weights (no checkpoint exists
offline; the cost is the same).  On a GPU, ``--device cuda --amp bf16`` runs both paths under autocast (fp16
would need a GradScaler the naive path does not have).

    .venv/bin/python scripts/benchmark_training.py                         # 2 x 384^2, 3 repeats (~2 min)
    .venv/bin/python scripts/benchmark_training.py --size 256 --repeats 2 --threads 1
"""
import argparse
import json

import torch

from sclle_basicsr.benchmarks.training_step import AMP, run_training_benchmark, table
from sclle_basicsr.utils.atomic_files import write_atomic


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=384)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--amp', choices=sorted(AMP), default=None, help='autocast dtype for both paths')
    parser.add_argument('--json', default=None)
    args = parser.parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device visible')
    if args.amp == 'fp16':
        parser.error('--amp fp16 needs a GradScaler the naive path does not have; compare with --amp bf16')
    if args.threads:
        torch.set_num_threads(args.threads)

    report = run_training_benchmark(size=args.size, batch=args.batch, repeats=args.repeats, device=args.device,
                                    amp=args.amp)
    print(table(report))
    print(json.dumps(report, indent=1))
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=1))
    return report


if __name__ == '__main__':
    main()
