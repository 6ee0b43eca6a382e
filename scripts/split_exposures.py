"""Split a multi-exposure collection (SICE style) into positive / under / over folders by mean grey level.

    python scripts/split_exposures.py ../shared/assets/sice_part1_subset datasets/sice_split
    python scripts/split_exposures.py IN OUT --under 0.2 --positive 0.4 0.6 --over 0.8 --copy

Default bands: under < 0.25, positive 0.35-0.65, over > 0.75 (mean grey level in [0, 1]).  Symbolic links by
default (--copy to copy); existing files in the output folders are never overwritten.  Use the folders as
``dataroot_pos`` and ``dataroot_neg: [.../under, .../over]`` of UnpairedContrastiveDataset.
"""
import argparse
import logging
import sys

from sclle_basicsr.data.exposure_split import (
    DEFAULT_OVER_MIN,
    DEFAULT_POSITIVE_RANGE,
    DEFAULT_UNDER_MAX,
    split_exposures,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('input', help='folder of multi-exposure images')
    parser.add_argument('output', help='folder that receives positive/, under/ and over/')
    parser.add_argument('--under', type=float, default=DEFAULT_UNDER_MAX, help='under-exposed: mean < UNDER')
    parser.add_argument('--positive', type=float, nargs=2, default=DEFAULT_POSITIVE_RANGE, metavar=('LOW', 'HIGH'),
                        help='positive (normal light): LOW <= mean <= HIGH')
    parser.add_argument('--over', type=float, default=DEFAULT_OVER_MIN, help='over-exposed: mean > OVER')
    parser.add_argument('--copy', action='store_true', help='copy files instead of making symbolic links')
    parser.add_argument('--recursive', action='store_true', help='also walk sub-folders of INPUT')
    parser.add_argument('--dry_run', action='store_true', help='only classify and print the counts')
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format='%(levelname)s: %(message)s')
    try:
        result = split_exposures(args.input, args.output, under_max=args.under, positive_range=args.positive,
                                 over_min=args.over, copy=args.copy, recursive=args.recursive, dry_run=args.dry_run)
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == '__main__':
    sys.exit(main())
