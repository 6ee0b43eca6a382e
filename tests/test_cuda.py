"""What only a GPU can settle: every test here is marked ``cuda`` and skipped, with the reason, without one
(``make gpu-check`` runs them and writes the GPU's figures)."""
import math

import pytest
import torch
from basicsr.models import build_model
from test_cuda_training_setup import restore_torch_flags  # noqa: F401  (fixture)
from test_mixed_precision import LOSSES, model_options, real_data, train_steps  # noqa: F401  (real_data: fixture)

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.inference import enhance_tensor
from sclle_basicsr.inference.backends import cuda_bf16_support
from sclle_basicsr.inference.memory_budget import BYTES_PER_PIXEL, IO_BYTES_PER_PIXEL
from sclle_basicsr.losses.scl_losses import SCLLosses
from sclle_basicsr.runner.prefetchers import StoppableCUDAPrefetcher

pytestmark = pytest.mark.cuda
CUDA = torch.device('cuda')


def cuda_model(dataset_opt, amp=None, **train):
    opt = model_options(dataset_opt, amp)
    opt['num_gpu'] = 1
    opt['train'].update(train)
    torch.manual_seed(0)
    return build_model(opt)


def native_bf16_or_skip():
    if cuda_bf16_support() != 'native':
        pytest.skip(f'{torch.cuda.get_device_name()} has no native bf16')


def test_fp16_and_bf16_training_at_the_recipes_crop(real_data):  # noqa: F811
    """384x384, the recipe's crop, where fp16 Gram matrices overflowed: finite losses, moving weights, losses as
    fp32's (fp32 itself runs TF32 convolutions by default, hence the tolerance)."""
    dataset_opt, batch = real_data
    data = batch(384)
    fp32 = train_steps(cuda_model(dataset_opt), data, 1)[0][0]
    fp16 = train_steps(cuda_model(dataset_opt, 'fp16'), data, 6)
    assert all(math.isfinite(logs[k]) for logs, _ in fp16 for k in LOSSES + ('l_total', ))
    assert fp16[-1][1], 'the last fp16 step did not change the weights'
    for key in LOSSES:
        assert abs(fp16[0][0][key] - fp32[key]) <= 1e-2 * abs(fp32[key]), (key, fp16[0][0][key], fp32[key])
    if cuda_bf16_support() == 'native':
        bf16 = train_steps(cuda_model(dataset_opt, 'bf16'), data, 2)
        assert all(moved for _, moved in bf16)
        assert abs(bf16[0][0]['l_con'] - fp32['l_con']) <= 2e-2 * abs(fp32['l_con'])


def test_a_steps_losses_never_synchronise_with_the_host(real_data):  # noqa: F811
    """With the labels trusted (checked by the dataset), the four losses' forward and backward make no
    device-to-host synchronisation: CUDA's sync debug mode turns one into an error."""
    dataset_opt, batch = real_data
    data = {k: [v.to(CUDA) for v in value] if isinstance(value, list) else value.to(CUDA)
            for k, value in batch(128).items() if k in ('lq', 'pos', 'neg', 'label')}
    losses = SCLLosses(model_options(dataset_opt)['train']).to(CUDA)
    losses.losses['semantic'].trust_labels_checked_by(19, 255)
    pred = data['lq'].pow(0.5).requires_grad_()
    curves = torch.zeros(pred.size(0), 24, 128, 128, device=CUDA)
    losses(pred, curves=curves, **data)  # warm-up: cuDNN's first calls may synchronise
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        total, _ = losses(pred, curves=curves, **data)
        total.backward()
    finally:
        torch.cuda.set_sync_debug_mode('default')


def test_deterministic_training_repeats_bit_for_bit(real_data, restore_torch_flags):  # noqa: F811
    """train.deterministic: true, without L_sc: two runs give the same weights, bit for bit.  With L_sc's
    cross-entropy an op without a deterministic CUDA kernel raises, naming itself (the documented limit)."""
    dataset_opt, batch = real_data
    data = batch(128)
    runs = []
    for _ in range(2):
        model = cuda_model(dataset_opt, deterministic=True, semantic_opt=None)
        train_steps(model, data, 3)
        runs.append(model.get_bare_model(model.net_g).state_dict())
    for name, value in runs[0].items():
        assert torch.equal(runs[1][name], value), name
    with pytest.raises(RuntimeError, match='does not have a deterministic implementation'):
        train_steps(cuda_model(dataset_opt, deterministic=True), data, 1)


@pytest.fixture
def net():
    torch.manual_seed(0)
    return DCENet().eval().requires_grad_(False).to(CUDA)


def psnr(a, b):
    mse = float(((a.float().cpu() - b.float().cpu())**2).mean())
    return math.inf if mse == 0 else -10 * math.log10(mse)


def test_tiled_equals_untiled_and_ieee_fp32_matches_the_cpu(net, restore_torch_flags):  # noqa: F811
    x = torch.rand(1, 3, 512, 768, generator=torch.Generator().manual_seed(0)).mul(0.4)
    torch.backends.cudnn.conv.fp32_precision = 'ieee'
    cpu = enhance_tensor(net.cpu(), x, tile=0, backend='torch')
    net.to(CUDA)
    xc = x.to(CUDA)
    whole = enhance_tensor(net, xc, tile=0, backend='torch')
    assert (whole.cpu() - cpu).abs().max() <= 1e-5
    assert (enhance_tensor(net, xc, tile=128, tile_pad=8, backend='torch') - whole).abs().max() <= 1e-5
    torch.backends.cudnn.conv.fp32_precision = 'tf32'
    assert psnr(enhance_tensor(net, xc, tile=0, backend='torch'), cpu) > 40
    precisions = ['fp16'] + (['bf16'] if cuda_bf16_support() == 'native' else [])
    for precision in precisions:
        reduced = enhance_tensor(net, xc, tile=0, precision=precision, backend='torch')
        assert psnr(reduced, cpu) > 40, precision
        tiled = enhance_tensor(net, xc, tile=128, tile_pad=8, precision=precision, backend='torch')
        assert (tiled - reduced).abs().max() <= 2e-2, precision


@pytest.mark.parametrize('precision', ['fp32', 'fp16', 'bf16'])
def test_memory_per_pixel_stays_within_the_budgets_figure(net, precision):
    """The memory budget's per-pixel figures for CUDA are CPU measurements standing in: an untiled pass must not
    take more, or the budget would let a pass run out of memory."""
    if precision == 'bf16':
        native_bf16_or_skip()
    x = torch.rand(1, 3, 1200, 1600, device=CUDA)
    enhance_tensor(net, x[:, :, :256, :256], tile=0, precision=precision, backend='torch')  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    enhance_tensor(net, x, tile=0, precision=precision, backend='torch')
    torch.cuda.synchronize()
    per_pixel = (torch.cuda.max_memory_allocated() - before) / (1200 * 1600)
    assert per_pixel <= BYTES_PER_PIXEL[('cuda', 'torch', precision)] + IO_BYTES_PER_PIXEL, per_pixel


def test_a_budget_bounds_the_gpu_memory_of_a_large_image(net):
    x = torch.rand(1, 3, 3000, 4000, device=CUDA).mul(0.4)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    enhance_tensor(net, x, tile=None, memory_budget=2**30, backend='torch')
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() - before <= 2**30


def test_the_cuda_prefetcher_carries_the_negatives():
    samples = [{'lq': torch.rand(3, 8, 8), 'neg': [torch.rand(3, 8, 8), torch.rand(3, 8, 8)]} for _ in range(4)]
    loader = torch.utils.data.DataLoader(samples, batch_size=2, pin_memory=True)
    prefetcher = StoppableCUDAPrefetcher(loader, {'num_gpu': 1})
    batch = prefetcher.next()
    assert batch['lq'].is_cuda and all(n.is_cuda for n in batch['neg'])
