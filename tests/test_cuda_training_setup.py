"""What a CUDA run decides (launcher backend, determinism, TF32, bf16 support, the prefetcher), checked on the CPU:
CUDA is mocked where a decision asks for it, and the meta device (where reading a value back raises) shows that a
step's losses never synchronise with the host."""
import contextlib
import types
import warnings

import pytest
import torch
import torch.nn.functional as F
import yaml
from basicsr.models import build_model
from basicsr.utils import dist_util
from conftest import TINY_SEGMENTOR_CFG

from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.inference.backends import TorchBackend
from sclle_basicsr.losses.scl_losses import SCLLosses
from sclle_basicsr.losses.semantic_brightness_loss import SemanticBrightnessLoss, brightness_consistency
from sclle_basicsr.models import training_setup
from sclle_basicsr.runner import basicsr_runner
from sclle_basicsr.runner.prefetchers import StoppableCUDAPrefetcher

CUDA = torch.device('cuda')


# ------------------------------------------------------------------------------------------ launcher backend
@pytest.fixture
def gpu_machine(monkeypatch):
    """A machine with 4 GPUs as torch.distributed and BasicSR's init_dist see it; records what they are asked."""
    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 4)
    monkeypatch.setattr(torch.cuda, 'set_device', lambda device: calls.append(('set_device', device)))
    monkeypatch.setattr(torch.distributed, 'init_process_group',
                        lambda backend=None, **kwargs: calls.append(('init_process_group', backend)))
    monkeypatch.setattr(dist_util.mp, 'get_start_method', lambda allow_none=True: 'spawn')
    monkeypatch.setenv('RANK', '1')
    return calls


def launch(monkeypatch, tmp_path, num_gpu, *extra):
    opt_file = tmp_path / 'train.yml'
    opt_file.write_text(yaml.safe_dump({'name': 'x', 'num_gpu': num_gpu}))
    monkeypatch.setattr(basicsr_runner.sys, 'argv', ['train.py', '-opt', str(opt_file), '--launcher', 'pytorch',
                                                     *extra])
    basicsr_runner.init_dist('pytorch')


@pytest.mark.parametrize('num_gpu, extra', [(0, ()), (1, ('--force_yml', 'num_gpu=0'))])
def test_a_cpu_model_on_a_gpu_machine_gets_gloo_and_no_cuda_device(gpu_machine, monkeypatch, tmp_path, capsys,
                                                                    num_gpu, extra):
    launch(monkeypatch, tmp_path, num_gpu, *extra)
    assert gpu_machine == [('init_process_group', 'gloo')]
    assert 'num_gpu is 0 (a CPU model), so the distributed backend is gloo instead of nccl' in capsys.readouterr().out


@pytest.mark.parametrize('num_gpu', [1, 'auto'])
def test_a_gpu_model_gets_basicsrs_nccl_group_on_its_gpu(gpu_machine, monkeypatch, tmp_path, num_gpu):
    launch(monkeypatch, tmp_path, num_gpu)
    assert gpu_machine == [('set_device', 1), ('init_process_group', 'nccl')]


def test_no_cuda_gets_gloo(gpu_machine, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    launch(monkeypatch, tmp_path, 1)
    assert gpu_machine == [('init_process_group', 'gloo')]
    assert 'no CUDA device, so the distributed backend is gloo' in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ model options
def model_options(num_gpu=0, dist=False, datasets=None, **train):
    train = dict({'color_opt': {'type': 'ColorConstancyLoss', 'smooth_weight': 0},
                  'optim_g': {'type': 'Adam', 'lr': 1e-4},
                  'scheduler': {'type': 'MultiStepLR', 'milestones': [10**9], 'gamma': 1.0}}, **train)
    return {'name': 'setup', 'model_type': 'SCLLLEModel', 'scale': 1, 'is_train': True, 'dist': dist, 'rank': 0,
            'world_size': 1, 'num_gpu': num_gpu, 'network_g': {'type': 'DCENet', 'num_features': 4},
            'path': {'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None},
            'datasets': datasets or {}, 'train': train}


def test_data_parallel_is_refused_with_what_to_run_instead():
    with pytest.raises(ValueError, match=r'num_gpu 4 without a launcher would train with DataParallel.*'
                                         r'--nproc_per_node=4 .*--launcher pytorch'):
        build_model(model_options(num_gpu=4))


@pytest.fixture
def restore_torch_flags():
    """These tests set process-wide PyTorch flags and CUBLAS_WORKSPACE_CONFIG: put them back afterwards."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
             torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision)
    with pytest.MonkeyPatch.context() as env:
        env.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
        yield
    (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic, enabled, warn_only,
     torch.backends.cudnn.conv.fp32_precision, torch.backends.cuda.matmul.fp32_precision) = saved
    torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


@pytest.mark.parametrize('choice', [True, 'warn'])
def test_deterministic_training_sets_the_flags(restore_torch_flags, choice):
    torch.backends.cudnn.benchmark = True  # as BasicSR's train_pipeline leaves it
    build_model(model_options(deterministic=choice))
    assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.is_deterministic_algorithms_warn_only_enabled() == (choice == 'warn')
    assert training_setup.os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'


def test_without_the_option_basicsrs_settings_stay(restore_torch_flags):
    torch.backends.cudnn.benchmark = True
    build_model(model_options())
    assert torch.backends.cudnn.benchmark is True and not torch.are_deterministic_algorithms_enabled()
    assert 'CUBLAS_WORKSPACE_CONFIG' not in training_setup.os.environ
    with pytest.raises(ValueError, match='train.deterministic must be true, false or warn'):
        build_model(model_options(deterministic='yes'))


@pytest.mark.parametrize('choice, precision', [(True, 'tf32'), (False, 'ieee')])
def test_tf32_option_sets_conv_and_matmul_precision_on_cuda(restore_torch_flags, choice, precision):
    said = []
    training_setup.set_tf32(choice, CUDA, said.append)
    assert torch.backends.cudnn.conv.fp32_precision == torch.backends.cuda.matmul.fp32_precision == precision
    assert said == [f'fp32 on CUDA: convolutions in {precision}, matmuls in {precision} (train.tf32: '
                    f'{str(choice).lower()})']


def test_tf32_unset_keeps_pytorchs_defaults_and_says_which(restore_torch_flags):
    said = []
    training_setup.set_tf32(None, CUDA, said.append)
    assert said == ['fp32 on CUDA: convolutions in tf32, matmuls in none (PyTorch defaults; train.tf32 sets them)']
    training_setup.set_tf32(False, torch.device('cpu'), said.append)  # CPU: nothing to set, nothing said
    assert len(said) == 1 and torch.backends.cudnn.conv.fp32_precision == 'tf32'


# ------------------------------------------------------------------------------------------ amp dtype per device
@pytest.fixture
def gpu(monkeypatch):
    """A mocked GPU; ``gpu(native=..., emulated=...)`` sets what torch.cuda.is_bf16_supported answers."""
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda device=None: 'Tesla T4')

    def set_bf16(native, emulated):
        monkeypatch.setattr(torch.cuda, 'is_bf16_supported',
                            lambda including_emulation=True: native or (including_emulation and emulated))
    return set_bf16


def test_bf16_on_a_gpu_without_native_bf16_warns_or_refuses(gpu):
    said = []
    gpu(native=True, emulated=True)
    assert training_setup.amp_dtype({'dtype': 'bf16'}, CUDA, said.append) == torch.bfloat16 and said == []
    gpu(native=False, emulated=True)
    assert training_setup.amp_dtype({'dtype': 'bf16'}, CUDA, said.append) == torch.bfloat16
    assert said == ['train.amp.dtype bf16: Tesla T4 has no native bf16 (compute capability < 8.0), PyTorch '
                    'emulates it and the step is slow; use fp16 there']
    gpu(native=False, emulated=False)
    with pytest.raises(ValueError, match='Tesla T4 cannot run bf16; use fp16'):
        training_setup.amp_dtype({'dtype': 'bf16'}, CUDA, said.append)
    assert training_setup.amp_dtype({'dtype': 'fp16'}, CUDA, said.append) == torch.float16 and len(said) == 1


def test_bf16_inference_on_a_gpu_without_native_bf16_warns_or_refuses(gpu):
    net = DCENet(num_features=4)
    gpu(native=False, emulated=True)
    with pytest.warns(RuntimeWarning, match='Tesla T4 has no native bf16.*use precision "fp16" there'):
        TorchBackend(net, CUDA, 'bf16')
    gpu(native=False, emulated=False)
    with pytest.raises(ValueError, match='precision "bf16": Tesla T4 cannot run bf16'):
        TorchBackend(net, CUDA, 'bf16')
    gpu(native=True, emulated=True)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        TorchBackend(net, CUDA, 'bf16')
        TorchBackend(net, CUDA, 'fp16')


def test_amp_on_the_cpu_warns_where_it_cannot_pay(monkeypatch):
    said = []
    cpu = torch.device('cpu')
    assert training_setup.amp_dtype({'dtype': 'fp16'}, cpu, said.append) == torch.float16
    assert 'fp16 on a CPU' in said[-1]
    monkeypatch.setattr(training_setup, 'native_bf16', lambda: False)
    assert training_setup.amp_dtype({'dtype': 'bf16'}, cpu, said.append) == torch.bfloat16
    assert 'no native bf16' in said[-1]
    assert training_setup.amp_dtype(None, cpu, said.append) is None and len(said) == 2
    with pytest.raises(ValueError, match=r"train.amp.dtype must be one of \['bf16', 'fp16'\]"):
        training_setup.amp_dtype({'dtype': 'fp8'}, cpu, said.append)
    scaler = training_setup.grad_scaler(torch.float16, cpu, {'dtype': 'fp16', 'init_scale': 1024})
    assert scaler.is_enabled() and scaler.get_scale() == 1024.0
    assert not training_setup.grad_scaler(torch.bfloat16, cpu, {'dtype': 'bf16'}).is_enabled()


# ------------------------------------------------------------------------------------------ no host syncs
SEMANTIC_ON_META = {'semantic_opt': {'type': 'SemanticBrightnessLoss'},
                    'segmentor_opt': {'allow_random_init': True, 'cfg_options': TINY_SEGMENTOR_CFG},
                    'contrastive_opt': {'type': 'SCLContrastiveLoss'},
                    'retention_opt': {'type': 'FeatureRetentionLoss'},
                    'color_opt': {'type': 'ColorConstancyLoss'}, 'vgg_opt': {'weights_format': 'random'}}


def meta_inputs(n=2, size=32):
    def image():
        return torch.empty(n, 3, size, size, device='meta')
    return dict(lq=image(), pos=image(), neg=[image(), image()], curves=torch.empty(n, 24, size, size, device='meta'),
                label=torch.empty(n, size, size, dtype=torch.long, device='meta'))


def test_a_steps_losses_make_no_device_to_host_synchronisation():
    """On the meta device every read-back (``.item()``, ``int()``, ``bool()``) raises: the four losses of a step,
    forward and backward, run there once the labels are trusted, and the label checks of a standalone call do not.
    """
    losses = SCLLosses(SEMANTIC_ON_META).to('meta')
    pred = torch.empty(2, 3, 32, 32, device='meta', requires_grad=True)
    with pytest.raises(RuntimeError, match='cannot be called on meta tensors'):
        losses(pred, **meta_inputs())
    losses.losses['semantic'].trust_labels_checked_by(19, 255)
    total, logs = losses(pred, **meta_inputs())
    total.backward()
    assert total.device.type == 'meta' and set(logs) == {'l_con', 'l_sc', 'l_fr', 'l_cc'}
    assert pred.grad.shape == pred.shape


def test_the_model_trusts_only_labels_its_dataset_checked_for_the_same_classes(tmp_path):
    """UnpairedContrastiveDataset checks every label it reads against its num_classes and ignore_index: labels
    from it are not checked again, unless those differ from the loss's; a standalone call is always checked."""
    semantic = {'type': 'SemanticBrightnessLoss', 'ce_weight': 0, 'num_classes': 19}
    dataset = {'type': 'UnpairedContrastiveDataset', 'dataroot_lq': str(tmp_path)}
    cases = [(dataset, (19, 255)), (dict(dataset, num_classes=21), (21, 255)), ({'type': 'PairedImageDataset'}, None),
             (None, None)]
    for train_set, checked_for in cases:
        opt = model_options(datasets={'train': train_set} if train_set else None, semantic_opt=semantic)
        loss = build_model(opt).scl_losses.losses['semantic']
        assert loss._labels_checked_for == checked_for
        label = torch.full((1, 8, 8), 40)
        if checked_for == (19, 255):
            loss.check_inputs(torch.rand(1, 3, 8, 8), label=label)  # trusted: not read back
        else:
            with pytest.raises(ValueError, match=r'label values must be in \[0, 19\) or 255'):
                loss.check_inputs(torch.rand(1, 3, 8, 8), label=label)
    with pytest.raises(ValueError, match=r'found values in \[40, 40\]'):
        SemanticBrightnessLoss(ce_weight=0, num_classes=19)(torch.rand(1, 3, 8, 8), label=torch.full((1, 8, 8), 40))


def test_cross_entropy_without_a_sync_is_the_mean_over_labelled_pixels_and_zero_without():
    torch.manual_seed(0)
    loss = SemanticBrightnessLoss(segmentor={'allow_random_init': True, 'num_classes': 4,
                                             'cfg_options': TINY_SEGMENTOR_CFG})
    pred = torch.rand(2, 3, 32, 32)
    label = torch.randint(0, 4, (2, 32, 32))
    label[:, :8] = 255
    with torch.no_grad():
        expected = brightness_consistency(pred, label) + F.cross_entropy(loss.segmentor(pred), label, ignore_index=255)
        assert torch.allclose(loss.from_features(pred, {'label': label}, None), expected, rtol=1e-6)
        unlabelled = torch.full_like(label, 255)  # the mean would be NaN
        assert float(loss.from_features(pred, {'label': unlabelled}, None)) == 0.0


# ------------------------------------------------------------------------------------------ CUDA prefetcher
def test_the_cuda_prefetcher_copies_lists_of_tensors_too(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'Stream', lambda: object())
    monkeypatch.setattr(torch.cuda, 'stream', lambda stream: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, 'current_stream', lambda: types.SimpleNamespace(wait_stream=lambda s: None))
    batches = [{'lq': torch.rand(2, 3, 4, 4), 'neg': [torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)],
                'lq_path': ['a.png', 'b.png']}]
    prefetcher = StoppableCUDAPrefetcher(batches, {'num_gpu': 0})
    prefetcher.device = torch.device('meta')  # stands for the GPU: a copy there is visible
    prefetcher.reset()
    batch = prefetcher.next()
    assert batch['lq'].device.type == 'meta' and [n.device.type for n in batch['neg']] == ['meta', 'meta']
    assert batch['lq_path'] == ['a.png', 'b.png'] and prefetcher.next() is None
