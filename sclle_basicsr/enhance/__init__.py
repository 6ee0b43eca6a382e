"""``sclle-enhance``: enhance image and video files or folders with a DCENet checkpoint (``python -m
sclle_basicsr.enhance``).

Real files are handled as they come: the EXIF orientation is applied; 16-bit PNG/TIFF stay 16-bit; an alpha
channel is passed through untouched; grayscale stays grayscale (enhanced as replicated RGB, converted back with
the BT.601 luma weights); the ICC profile is carried over; files that are not images are skipped and listed; an
image that cannot be decoded is reported and the rest processed (exit status 1). Inputs are never overwritten;
existing outputs only with ``--overwrite`` (``--skip_existing`` keeps them). Each output is written atomically
(:mod:`sclle_basicsr.utils.atomic_files`); temporary files of a killed run are removed by the next run. SIGINT and
SIGTERM abandon the image in progress, print the summary and exit.  Videos (PyAV, the ``video`` extra) are
streamed frame by frame with their audio, timestamps and rotation kept, under the same rules.

Exit status: 0 all images written, 1 some image failed, 2 usage error (bad arguments, no model, no input, existing
outputs), 130 / 143 stopped by SIGINT / SIGTERM.

* :mod:`.cli`: the command line and the run from arguments to summary;
* :mod:`.paths`: which files are enhanced and what each output is called;
* :mod:`.batch`: the work on each image, one failure not stopping the others;
* :mod:`.image_reading` and :mod:`.image_writing`: files in and out with bit depth, alpha and ICC profile kept;
* :mod:`.video` and :mod:`.video_output`: videos decoded, enhanced in batches of frames and encoded, streaming;
* :mod:`.signals`: SIGINT / SIGTERM turned into an orderly stop.
"""
from sclle_basicsr.enhance.cli import build_parser, main

__all__ = ['build_parser', 'main']
