"""The README's before/after still of a video: a clip panning across a BDD100K night frame (the shared assets) is
enhanced by ``sclle-enhance``'s video path with the released SCL-LLE weights, and one frame of the input and of the
output, as decoded from the two files, are put side by side in a JPEG under 200 KB.

    python scripts/make_video_figure.py [--out docs/figures/video_before_after.jpg]
"""
import argparse
import io
import os.path as osp
import sys
import tempfile

import numpy as np

from sclle_basicsr.enhance.flicker import read_frames
from sclle_basicsr.enhance.video import enhance_video
from sclle_basicsr.enhance.video_samples import pan_frames, write_video
from sclle_basicsr.utils.assets import REPO_ROOT, asset_path
from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.image_files import list_images

MAX_BYTES = 200_000


def side_by_side(before, after, labels=('input video', 'sclle-enhance')):
    """One RGB image: ``before`` | ``after`` with a label in each top-left corner."""
    from PIL import Image, ImageDraw
    gap = 8
    h, w = before.shape[:2]
    canvas = Image.new('RGB', (2 * w + gap, h), 'white')
    draw = ImageDraw.Draw(canvas)
    for i, (pixels, label) in enumerate(zip((before, after), labels)):
        canvas.paste(Image.fromarray(pixels), (i * (w + gap), 0))
        draw.rectangle((i * (w + gap), 0, i * (w + gap) + 8 * len(label) + 10, 20), fill='black')
        draw.text((i * (w + gap) + 5, 4), label, fill='white')
    return canvas


def jpeg_under(image, limit=MAX_BYTES):
    """JPEG bytes of ``image`` at the highest quality (90 down to 50) under ``limit`` bytes."""
    for quality in range(90, 45, -5):
        bio = io.BytesIO()
        image.save(bio, format='JPEG', quality=quality, optimize=True)
        if bio.tell() <= limit:
            return bio.getvalue()
    raise ValueError(f'the figure does not fit in {limit} bytes even at quality 50')


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--model_path', default=asset_path('weights', 'sclle_official.pth'))
    p.add_argument('--still', type=int, default=25, help='index of the BDD night frame (sorted by name)')
    p.add_argument('--size', default='640x360')
    p.add_argument('--out', default=osp.join(REPO_ROOT, 'docs', 'figures', 'video_before_after.jpg'))
    args = p.parse_args(argv)
    from PIL import Image

    from sclle_basicsr.inference import Enhancer
    folder = asset_path('lowlight_unlabelled', 'BDD_night')
    paths = list_images(folder) if osp.isdir(folder) else []
    if not paths or not osp.isfile(args.model_path):
        sys.exit(f'error: needs the BDD night frames ({folder}) and the weights ({args.model_path})')
    width, height = (int(v) for v in args.size.split('x'))
    still = Image.open(paths[args.still]).convert('RGB').resize((width * 5 // 4, height * 5 // 4), Image.BICUBIC)
    with tempfile.TemporaryDirectory() as workdir:
        src, out = osp.join(workdir, 'night.mp4'), osp.join(workdir, 'night_sclle.mp4')
        write_video(src, pan_frames(np.asarray(still), (width, height), 12, step=6), rate=30)
        enhance_video(Enhancer(args.model_path, device='cpu'), src, out, 'mp4')
        before, after = read_frames(src)[6], read_frames(out)[6]
    data = jpeg_under(side_by_side(before, after))
    write_atomic(args.out, data)
    print(f'{args.out}: {len(data)} bytes, frame 6 of a pan across {osp.basename(paths[args.still])}; mean '
          f'brightness {before.mean() / 255:.3f} -> {after.mean() / 255:.3f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
