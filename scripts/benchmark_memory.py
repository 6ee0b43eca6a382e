"""Working memory per pixel of each CPU inference configuration, the figures the memory budget's tile choice uses.

Every configuration runs in a fresh process per size: untiled at 1 and 2 MP (the slope is the bytes per pixel of a
pass), tiled at 12 MP (what tiling does not remove).  Prints the table, then the JSON (--json writes it too).

  .venv/bin/python scripts/benchmark_memory.py            # about 3 minutes
"""
import argparse
import json

from sclle_basicsr.benchmarks.machine import describe_machine
from sclle_basicsr.benchmarks.memory_per_pixel import MEMORY_CONFIGS, measure_memory_per_pixel
from sclle_basicsr.utils.atomic_files import write_atomic


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--configs', default=','.join(MEMORY_CONFIGS), help='subset of: ' + ', '.join(MEMORY_CONFIGS))
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--model_path', default=None, help='default: the released SCL-LLE weights, else random')
    p.add_argument('--json', default=None, help='also write the JSON here')
    args = p.parse_args(argv)
    report = measure_memory_per_pixel([c for c in args.configs.split(',') if c], threads=args.threads,
                                      model_path=args.model_path)
    report['machine'] = describe_machine(args.threads)
    print('| configuration | bytes/pixel of a pass | fixed MiB | untiled at 2 MP, bytes/pixel | '
          'bytes/pixel tiling keeps | 12 MP in 384-pixel tiles, MiB |')
    print('|---|---|---|---|---|---|')
    for name, r in report['results'].items():
        print(f"| {name} | {r['bytes_per_pixel']} | {r['fixed_mib']} | {r['untiled_bytes_per_pixel']} | "
              f"{r['io_bytes_per_pixel']} | {r['tiled_12mp_mib']} |")
    print(json.dumps(report, indent=1))
    if args.json:
        write_atomic(args.json, json.dumps(report, indent=1))
    return report


if __name__ == '__main__':
    main()
