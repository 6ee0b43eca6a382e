"""Training settings that depend on the device, read from the ``train:`` options of the SCL-LLE models.

* ``amp: {dtype: bf16|fp16}``: :func:`amp_dtype` checks the dtype against the device (bf16 on a GPU without native
  bf16, fp16 on a CPU);
* ``tf32: true|false``: :func:`set_tf32`, whether fp32 convolutions and matmuls on CUDA may use TF32;
* ``deterministic: true|warn|false``: :func:`set_deterministic`, deterministic CUDA kernels;
* :func:`refuse_data_parallel`: ``num_gpu`` > 1 without a launcher;
* :func:`trust_dataset_label_checks`: labels the training set already checked are not checked again each step.
"""
import os

import torch

from sclle_basicsr.inference.backends import cuda_bf16_support, native_bf16

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
DETERMINISTIC_CHOICES = (True, False, None, 'warn')
# cuBLAS's documented setting for reproducible results; read once, at the process's first cuBLAS call
CUBLAS_DETERMINISTIC_WORKSPACE = ':4096:8'


def amp_dtype(amp_opt, device, warn):
    """The autocast dtype of ``train.amp`` (None without it), checked against ``device``; ``warn(message)``.

    bf16 on CUDA needs a GPU with native bf16 (compute capability 8.0 or newer): where PyTorch only emulates it the
    step is slow (a warning), and where it cannot run at all it is an error.  fp16 on a CPU runs (PyTorch's CPU
    autocast supports it, so the fp16 path of the losses can be checked without a GPU) but slowly, with a warning:
    bf16 is the CPU's reduced precision, with fp32's range and no loss scaling.
    """
    if not amp_opt:
        return None
    name = amp_opt.get('dtype', 'bf16')
    if name not in AMP_DTYPES:
        raise ValueError(f'train.amp.dtype must be one of {sorted(AMP_DTYPES)}, got {name!r}')
    support = cuda_bf16_support() if device.type == 'cuda' and name == 'bf16' else 'native'
    if support != 'native':
        gpu = torch.cuda.get_device_name(device)
        if support == 'none':
            raise ValueError(f'train.amp.dtype bf16: {gpu} cannot run bf16; use fp16 (with its GradScaler) or '
                             'leave train.amp out (fp32)')
        warn(f'train.amp.dtype bf16: {gpu} has no native bf16 (compute capability < 8.0), PyTorch emulates it '
             'and the step is slow; use fp16 there')
    if device.type == 'cpu' and name == 'fp16':
        warn('train.amp.dtype fp16 on a CPU: it runs, with a GradScaler, but far slower than fp32 (PyTorch\'s CPU '
             'fp16 convolution backward); it is there to check the fp16 path without a GPU. bf16 is the CPU\'s '
             'reduced precision')
    if device.type == 'cpu' and name == 'bf16' and not native_bf16():
        warn('train.amp.dtype bf16: this CPU has no native bf16 (no AVX512-BF16 / AMX), so bf16 is emulated and '
             'slower than fp32; leave train.amp out here')
    return AMP_DTYPES[name]


def grad_scaler(dtype, device, amp_opt):
    """A GradScaler, enabled for fp16 only; ``train.amp.init_scale`` (default PyTorch's 65536) sets its start."""
    kwargs = {'init_scale': float(amp_opt['init_scale'])} if amp_opt and 'init_scale' in amp_opt else {}
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16, **kwargs)


def set_tf32(choice, device, log):
    """``train.tf32`` on CUDA: true lets fp32 convolutions and matmuls use TF32 (10-bit mantissa, much faster on
    Ampere and newer), false keeps them IEEE fp32; unset keeps PyTorch's defaults (TF32 convolutions, IEEE
    matmuls).  Either way ``log`` says which applies.  Process-wide PyTorch flags; nothing to do on a CPU."""
    if choice not in (True, False, None):
        raise ValueError(f'train.tf32 must be true, false or unset, got {choice!r}')
    if device.type != 'cuda':
        return
    conv, matmul = torch.backends.cudnn.conv, torch.backends.cuda.matmul
    if choice is not None:
        conv.fp32_precision = matmul.fp32_precision = 'tf32' if choice else 'ieee'
    # 'none' inherits PyTorch's default, which for matmuls is IEEE fp32
    log(f'fp32 on CUDA: convolutions in {conv.fp32_precision}, matmuls in {matmul.fp32_precision} '
        f'({"train.tf32: " + str(choice).lower() if choice is not None else "PyTorch defaults; train.tf32 sets them"})')


def set_deterministic(choice, log):
    """``train.deterministic``: true or ``warn`` makes CUDA training repeatable, false or unset keeps BasicSR's
    settings (``cudnn.benchmark`` on, whose choice of kernels may differ from run to run).

    True: ``cudnn.benchmark`` off, ``cudnn.deterministic`` on, ``torch.use_deterministic_algorithms(True)``, and
    ``CUBLAS_WORKSPACE_CONFIG`` set when unset; an op with no deterministic CUDA kernel then raises, naming itself.
    With L_sc's cross-entropy on CUDA three ops do (the segmentor's bilinear-resize and adaptive-average-pool
    backward, the NLL loss): ``warn`` runs them anyway, each with a warning, and the run is then not repeatable
    bit for bit.  Call it before any CUDA matmul (cuBLAS reads its workspace setting once).
    """
    if choice not in DETERMINISTIC_CHOICES:
        raise ValueError(f'train.deterministic must be true, false or warn, got {choice!r}')
    if not choice:
        return
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', CUBLAS_DETERMINISTIC_WORKSPACE)
    torch.use_deterministic_algorithms(True, warn_only=choice == 'warn')
    log(f'deterministic training: cudnn.benchmark off, deterministic algorithms on'
        f'{" (warn only)" if choice == "warn" else ""}, CUBLAS_WORKSPACE_CONFIG='
        f'{os.environ["CUBLAS_WORKSPACE_CONFIG"]}')


def refuse_data_parallel(opt):
    """``num_gpu`` > 1 without a launcher is BasicSR's DataParallel: an error saying what to run instead.

    DataParallel replicates only ``net_g``; the VGG-16 and segmentor passes of every loss, most of a step, would
    all run on GPU 0, and BasicSR multiplies the batch by ``num_gpu``.
    """
    num_gpu = opt.get('num_gpu', 0)
    if not opt.get('dist') and isinstance(num_gpu, int) and num_gpu > 1:
        raise ValueError(
            f'num_gpu {num_gpu} without a launcher would train with DataParallel, which runs every VGG-16 and '
            'segmentor pass on GPU 0 and multiplies the batch; set num_gpu: 1 (or num_gpu: auto with '
            'CUDA_VISIBLE_DEVICES=0), or start one process per GPU: python -m torch.distributed.run '
            f'--nproc_per_node={num_gpu} sclle_basicsr/train.py -opt ... --launcher pytorch')


def trust_dataset_label_checks(scl_losses, opt):
    """Let L_sc skip the per-step check of label ids when the training set checks every label it reads against
    the same classes and ignore index (:class:`UnpairedContrastiveDataset` and its subclasses)."""
    from basicsr.utils.registry import DATASET_REGISTRY

    from sclle_basicsr.data.unpaired_contrastive_dataset import UnpairedContrastiveDataset

    semantic = scl_losses.losses['semantic'] if 'semantic' in scl_losses.losses else None
    dataset_opt = (opt.get('datasets') or {}).get('train')
    if semantic is None or semantic.whole_image or not dataset_opt or dataset_opt.get('type') not in DATASET_REGISTRY:
        return False
    if not issubclass(DATASET_REGISTRY.get(dataset_opt['type']), UnpairedContrastiveDataset):
        return False
    semantic.trust_labels_checked_by(*UnpairedContrastiveDataset.checked_label_ids(dataset_opt))
    return True
