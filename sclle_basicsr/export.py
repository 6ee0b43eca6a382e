"""``sclle-export``: write a DCENet checkpoint as ONNX or TorchScript, with dynamic batch, height and width.

The exported graph is DCENet's own forward (input ``(N, 3, H, W)`` float32 in [0, 1], output the enhanced image,
same shape); subnormal weights are flushed at load, as in PyTorch.
"""
import argparse
import os
import os.path as osp
import sys

import torch

from sclle_basicsr import _compat  # noqa: F401
from sclle_basicsr.inference import CheckpointError, load_enhancer
from sclle_basicsr.inference.onnx_graph import ImageOnly, onnx_bytes
from sclle_basicsr.utils.atomic_files import atomic_open, describe_os_error

FORMATS = ('onnx', 'torchscript')


class ExportTargetError(ValueError):
    """``-o`` names a folder, or a file that exists (without ``overwrite``)."""


def check_target(out_path, overwrite=False):
    """Refuse an output path that is a folder, or an existing file unless ``overwrite``."""
    if osp.isdir(out_path):
        raise ExportTargetError(f'-o {out_path} is a folder; -o names the model file to write, e.g. '
                                f'{osp.join(out_path, "sclle.onnx")}')
    if osp.lexists(out_path) and not overwrite:
        raise ExportTargetError(f'-o {out_path} exists; pass --overwrite to replace it')


def export_model(model_path, fmt, out_path, opset=17, overwrite=False):
    """Export ``model_path`` to ``out_path`` in ``fmt`` ('onnx' or 'torchscript'); returns ``out_path``.

    An existing ``out_path`` is replaced only with ``overwrite`` (:class:`ExportTargetError` otherwise, also when
    another process creates it during the export); the file lands whole or not at all.
    """
    if fmt not in FORMATS:
        raise ValueError(f'format must be one of {", ".join(FORMATS)}, got "{fmt}"')
    check_target(out_path, overwrite)
    net = load_enhancer(model_path, 'cpu')
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    try:
        with atomic_open(out_path, 'wb', replace=overwrite) as f:
            _write(net, fmt, f, opset)
    except FileExistsError:
        raise ExportTargetError(f'-o {out_path} was created by another process during the export; not replaced '
                                '(pass --overwrite to replace it)') from None
    return out_path


def _write(net, fmt, f, opset):
    if fmt == 'onnx':
        f.write(onnx_bytes(net, opset))
    else:
        with torch.no_grad():  # no data-dependent control flow: tracing is exact
            torch.jit.save(torch.jit.trace(ImageOnly(net), torch.rand(1, 3, 64, 64), check_trace=False), f)


def main(argv=None):
    p = argparse.ArgumentParser(prog='sclle-export', description='Export a DCENet checkpoint (ONNX / TorchScript).')
    p.add_argument('--model_path', required=True, help='BasicSR checkpoint or bare state dict')
    p.add_argument('--format', default='onnx', choices=FORMATS)
    p.add_argument('-o', '--output', required=True, help='output file (.onnx / .pt)')
    p.add_argument('--opset', type=int, default=17, help='ONNX opset (default 17)')
    p.add_argument('--overwrite', action='store_true', help='replace the output file if it exists')
    args = p.parse_args(argv)
    try:
        path = export_model(args.model_path, args.format, args.output, opset=args.opset, overwrite=args.overwrite)
    except (CheckpointError, ValueError) as e:
        print(f'sclle-export: error: {e}', file=sys.stderr)
        return 2
    except OSError as e:  # a read-only folder, a full disk: nothing was written
        print(f'sclle-export: error: cannot write -o {args.output}: {describe_os_error(e)}; nothing written',
              file=sys.stderr)
        return 1
    print(f'sclle-export: wrote {args.format} model to {path} (input "input": N x 3 x H x W float32 in [0, 1], '
          'dynamic N, H, W)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
