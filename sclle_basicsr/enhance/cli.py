"""The ``sclle-enhance`` command line: arguments checked up front (usage errors before any work), then the run from
collecting the inputs to the printed summary.  What the command does with files: :mod:`sclle_basicsr.enhance`."""
import argparse
import os
import os.path as osp
import sys
import time

from sclle_basicsr.enhance.batch import enhance_all
from sclle_basicsr.enhance.paths import collect_inputs, output_path_for
from sclle_basicsr.enhance.signals import Interrupted, stop_on_signals
from sclle_basicsr.enhance.video import VideoError, VideoOptions, check_video_codec
from sclle_basicsr.inference import BACKENDS, PRECISIONS, CheckpointError, Enhancer
from sclle_basicsr.inference.memory_budget import MemoryBudgetError, parse_memory_size
from sclle_basicsr.inference.tiling import MIN_TILE, TILE_PAD, smallest_useful_tile
from sclle_basicsr.utils.assets import ENV_VAR, asset_path
from sclle_basicsr.utils.atomic_files import remove_stale_temporaries
from sclle_basicsr.utils.image_files import is_image_file, is_video_file


def default_model_hint():
    return (f'no --model_path given. The released weights are at {asset_path("weights", "sclle_official.pth")} '
            f'(SCL-LLE) and {asset_path("weights", "zerodce_official.pth")} (Zero-DCE); the assets folder is '
            f'${ENV_VAR}, else ../shared/assets next to the repository. A BasicSR checkpoint '
            f'(experiments/<name>/models/net_g_*.pth) works too.')


def memory_size(text):
    """``--memory_budget``: a size such as 4GiB, in bytes."""
    try:
        return parse_memory_size(text)
    except MemoryBudgetError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def build_parser():
    p = argparse.ArgumentParser(prog='sclle-enhance', description='Enhance low-light images with SCL-LLE / Zero-DCE.')
    p.add_argument('-i', '--input', required=True, help='image or video file, or a folder of them')
    p.add_argument('-o', '--output', required=True, help='output folder (created)')
    p.add_argument('--model_path', default=None, help='DCENet weights (BasicSR checkpoint or bare state dict)')
    p.add_argument('--recursive', action='store_true', help='walk sub-folders (the tree is mirrored in -o)')
    existing = p.add_mutually_exclusive_group()
    existing.add_argument('--overwrite', action='store_true', help='replace outputs that already exist')
    existing.add_argument('--skip_existing', action='store_true',
                          help='keep outputs that already exist and enhance only the others (resume a run)')
    p.add_argument('--tile', type=int, default=None,
                   help=f'tile size in pixels, 0 = whole image; at least {MIN_TILE} and > 2 * tile_pad; default: the '
                        'whole image when it fits --memory_budget, else the largest tiles that do (same pixels)')
    p.add_argument('--memory_budget', type=memory_size, default=None,
                   help='memory one image may take, e.g. 4GiB (default: half the available RAM on CPU, 80%% of the '
                        'free GPU memory on CUDA); chooses the tiling when --tile is not given')
    p.add_argument('--tile_pad', type=int, default=TILE_PAD, help='tile overlap; >= 7 gives the untiled result')
    p.add_argument('--device', default='auto', choices=('auto', 'cpu', 'cuda'))
    p.add_argument('--precision', default='fp32', choices=PRECISIONS)
    p.add_argument('--backend', default='auto', choices=BACKENDS,
                   help='auto: the fastest installed for the device and precision (see the README)')
    p.add_argument('--suffix', default='', help='appended to each output file name, e.g. _sclle')
    p.add_argument('--ext', default='auto', choices=('auto', 'png', 'jpg', 'tif'),
                   help='output format; auto keeps png/jpg/tif and writes png for the rest')
    p.add_argument('--video_codec', default='libx264',
                   help='encoder of video outputs (libx264, libx265, libvpx-vp9, mpeg4, ...); audio is copied')
    p.add_argument('--video_crf', type=int, default=18,
                   help='constant rate factor of encoders that take one (lower = better; 18 looks lossless)')
    p.add_argument('--video_batch', type=int, default=0,
                   help='video frames enhanced together; 0 (default): about 1 MP a batch (8 frames at 320x240, 1 '
                        'at 720p)')
    p.add_argument('--temporal_smoothing', type=float, default=0.0, metavar='ALPHA',
                   help='damp brightness flicker in videos: each frame\'s mean brightness is pulled towards a moving '
                        'average (weight ALPHA of the past, in [0, 1); 0.8 ~ five frames); 0 (default) = off, '
                        'see docs/video.md')
    p.add_argument('--quiet', action='store_true', help='no progress bar')
    return p


def check_arguments(args):
    """A usage-error message for bad arguments, else ``None``."""
    if not args.model_path:
        return default_model_hint()
    if (args.tile is not None and args.tile < 0) or args.tile_pad < 0:
        return '--tile and --tile_pad must be >= 0'
    if args.tile and args.tile < smallest_useful_tile(args.tile_pad):
        return (f'--tile {args.tile} is too small: each tile is computed with --tile_pad {args.tile_pad} pixels of '
                f'overlap on every side, so tiles under {smallest_useful_tile(args.tile_pad)} pixels spend most of '
                f'their time on the overlap; use --tile 0 (whole image) or --tile '
                f'{smallest_useful_tile(args.tile_pad)} or more')
    if args.video_crf < 0 or args.video_batch < 0:
        return '--video_crf and --video_batch must be >= 0'
    if not 0 <= args.temporal_smoothing < 1:
        return f'--temporal_smoothing {args.temporal_smoothing}: ALPHA must lie in [0, 1) (0 = off)'
    if osp.exists(args.output) and not osp.isdir(args.output):
        return f'-o {args.output} is an existing file; -o names the output folder'
    if not osp.isdir(args.output) and (is_image_file(args.output) or is_video_file(args.output)):
        kind = 'an image' if is_image_file(args.output) else 'a video'
        return (f'-o {args.output} ends in {kind} extension, but -o names the output folder (each output keeps '
                'its input\'s name, plus --suffix); give a folder, e.g. -o enhanced/')
    return None


def main(argv=None):
    args = build_parser().parse_args(argv)
    counts = {'images': 0, 'written': 0, 'failed': 0, 'kept': 0, 'megapixels': 0.0, 'video_inputs': 0, 'videos': 0,
              'frames': 0}
    with stop_on_signals():
        try:
            return run(args, counts)
        except Interrupted as stop:
            noun = 'file' if counts['video_inputs'] else 'image'
            print(f'sclle-enhance: stopped by {stop}: {counts["written"]} of {counts["images"]} {noun}(s) written, '
                  f'{counts["failed"]} failed, {counts["kept"]} existing output(s) kept; the {noun} in progress was '
                  'abandoned and its temporary file removed (rerun with --skip_existing to finish)', flush=True)
            return 128 + stop.signum


def run(args, counts):
    """The run for parsed ``args``, counting in ``counts``; returns the exit status."""
    err = sys.stderr
    problem = check_arguments(args)
    if problem:
        print(f'sclle-enhance: error: {problem}', file=err)
        return 2
    try:
        root, images, skipped = collect_inputs(args.input, args.recursive)
    except ValueError as e:
        print(f'sclle-enhance: error: {e}', file=err)
        return 2
    counts['images'] = len(images)
    counts['video_inputs'] = sum(map(is_video_file, images))
    if counts['video_inputs']:
        try:
            problem = check_video_codec(args.video_codec)
        except VideoError as e:
            problem = f'{counts["video_inputs"]} video file(s) in {args.input}, but {e}'
        if problem:
            print(f'sclle-enhance: error: {problem}', file=err)
            return 2
    output_dir = osp.abspath(args.output)
    targets = [output_path_for(path, root, output_dir, args.suffix, args.ext) for path in images]
    existing = [out for out, _ in targets if osp.lexists(out)]
    if existing and not (args.overwrite or args.skip_existing):
        print(f'sclle-enhance: error: {len(existing)} output file(s) already exist, e.g. {existing[0]}; pass '
              '--overwrite to replace them or --skip_existing to keep them', file=err)
        return 2
    try:
        enhancer = Enhancer(args.model_path, device=args.device, precision=args.precision, tile=args.tile,
                            tile_pad=args.tile_pad, backend=args.backend, memory_budget=args.memory_budget)
    except (CheckpointError, RuntimeError, ValueError) as e:
        print(f'sclle-enhance: error: {e}', file=err)
        return 2
    for path in skipped:
        print(f'skipped (not an image or video): {path}', file=err)
    if not images:
        print(f'sclle-enhance: error: no image or video in {args.input} ({len(skipped)} other file(s))', file=err)
        return 2
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        print(f'sclle-enhance: error: cannot create the output folder -o {args.output}: {e}', file=err)
        return 2
    for path in remove_stale_temporaries(output_dir):
        print(f'removed {path} (temporary file of an interrupted run)', file=err)
    start = time.perf_counter()
    try:
        from tqdm import tqdm
        bar = tqdm(images, unit='file' if counts['video_inputs'] else 'img', disable=args.quiet, file=err)

        def frame_progress(total):  # frames per second, under the files' bar
            return tqdm(total=total, unit='frame', leave=False, disable=args.quiet, file=err)
    except ImportError:
        bar, frame_progress = images, None
    video_options = VideoOptions(codec=args.video_codec, crf=args.video_crf, batch=args.video_batch,
                                 smoothing=args.temporal_smoothing)
    try:
        failures = enhance_all(enhancer, bar, images, targets, counts, skip_existing=args.skip_existing,
                               model_path=args.model_path, overwrite=args.overwrite, video_options=video_options,
                               frame_progress=frame_progress)
    finally:
        if hasattr(bar, 'close'):
            bar.close()
    seconds = time.perf_counter() - start
    megapixels = counts['megapixels']
    if counts['video_inputs']:
        written = (f'{counts["written"] - counts["videos"]} image(s) and {counts["videos"]} video(s) '
                   f'({counts["frames"]} frames, {counts["frames"] / max(seconds, 1e-9):.2f} frames/s)')
    else:
        written = f'{counts["written"]} image(s)'
    print(f'sclle-enhance: {written} written to {output_dir}, {megapixels:.2f} MP in '
          f'{seconds:.1f} s ({megapixels / max(seconds, 1e-9):.2f} MP/s); {len(failures)} failed; '
          f'{counts["kept"]} existing output(s) kept; {len(skipped)} non-image file(s) skipped')
    for path, msg in failures:
        print(f'  failed: {path}: {msg}')
    return 1 if failures else 0
