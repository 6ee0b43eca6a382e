"""Read pip's installation report (``pip install --dry-run --report PLAN``): print the plan, fail on what it must not
hold or must hold.

    python .ci/check_plan.py PLAN [--absent NAME ...] [--present NAME ...]
"""
import argparse
import json
import re
import sys


def canonical(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument('plan')
    p.add_argument('--absent', nargs='*', default=[], help='packages the plan must not install')
    p.add_argument('--present', nargs='*', default=[], help='packages the plan must install')
    args = p.parse_args(argv)
    with open(args.plan) as f:
        plan = {canonical(i['metadata']['name']): i['metadata']['version'] for i in json.load(f)['install']}
    print(f'pip plans to install {len(plan)} package(s):', ', '.join(f'{n}=={v}' for n, v in sorted(plan.items())))
    wrong = [f'{n}=={plan[n]} (must not be installed)' for n in map(canonical, args.absent) if n in plan]
    wrong += [f'{n} (must be installed)' for n in map(canonical, args.present) if n not in plan]
    if wrong:
        sys.exit(f'{args.plan}: ' + '; '.join(wrong))


if __name__ == '__main__':
    main()
