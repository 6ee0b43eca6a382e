"""The files the package ships: BasicSR option files and the model zoo's weights and index.

In a checkout they are the top-level ``options/`` and ``model_zoo/`` (``sclle_basicsr/files/`` links to them); a
wheel holds copies, so an installed package reaches them too.  Option files are read where they are; to edit one,
copy them into your working directory first:

    python -m sclle_basicsr.utils.package_files list                 # the shipped option files, one path a line
    python -m sclle_basicsr.utils.package_files copy-options [DEST]  # into DEST (default ./options), never overwriting

Their relative paths (``demo_data/``, ``experiments/``, ``../shared/assets``) are relative to the working directory,
which is also where BasicSR's runners write (``python -m sclle_basicsr.train`` / ``test``).
"""
import argparse
import os
import os.path as osp
import sys

from sclle_basicsr.utils.atomic_files import write_atomic

FILES_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'files')
OPTIONS_DIR = osp.join(FILES_DIR, 'options')
ZOO_DIR = osp.join(FILES_DIR, 'model_zoo')


def option_files():
    """The shipped option files, as paths relative to :data:`OPTIONS_DIR` (``train/<name>.yml``), sorted."""
    found = []
    for folder in sorted(os.listdir(OPTIONS_DIR)):
        if osp.isdir(osp.join(OPTIONS_DIR, folder)):
            found += [f'{folder}/{n}' for n in sorted(os.listdir(osp.join(OPTIONS_DIR, folder))) if n.endswith('.yml')]
    return found


def option_file(name):
    """The absolute path of a shipped option file (``'train/train_SCLLLE_demo.yml'``); an error lists the others."""
    path = osp.join(OPTIONS_DIR, name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such option file in the package; it ships {", ".join(option_files())}')
    return path


def copy_options(dest='options'):
    """Copy every shipped option file into ``dest`` (``dest/train``, ``dest/test``); returns the paths written.

    A file already in ``dest`` is left as it is: identical ones are skipped, and a different one stops the copy
    before anything is written (``FileExistsError`` naming it).
    """
    plan = [(osp.join(OPTIONS_DIR, name), osp.join(dest, name)) for name in option_files()]
    differing = []
    for src, dst in plan:
        if osp.exists(dst):
            with open(src, 'rb') as a, open(dst, 'rb') as b:
                if a.read() != b.read():
                    differing.append(dst)
    if differing:
        raise FileExistsError(f'{", ".join(differing)} already exist(s) and differ(s) from the shipped option files; '
                              'nothing was copied (move them away or choose another DEST)')
    written = []
    for src, dst in plan:
        if not osp.exists(dst):
            os.makedirs(osp.dirname(dst), exist_ok=True)
            with open(src, 'rb') as f:
                write_atomic(dst, f.read())
            written.append(dst)
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='action', required=True)
    sub.add_parser('list', help='the shipped option files (absolute paths)')
    c = sub.add_parser('copy-options', help='copy the option files into DEST, never overwriting')
    c.add_argument('dest', nargs='?', default='options')
    args = p.parse_args(argv)
    if args.action == 'list':
        for name in option_files():
            print(osp.join(OPTIONS_DIR, name))
        return 0
    try:
        written = copy_options(args.dest)
    except (FileExistsError, OSError) as err:
        sys.exit(f'error: {err}')
    print(f'{len(written)} option file(s) written under {args.dest}/' + ('' if written else ' (all already there)'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
