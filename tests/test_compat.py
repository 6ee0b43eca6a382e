"""Each compatibility fix: the pinned stack fails without it (in a fresh interpreter) and works with it."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from sclle_basicsr import _compat


def run_python(code):
    return subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)


def test_basicsr_import_needs_the_torchvision_alias():
    bare = run_python('import basicsr')
    assert bare.returncode != 0 and 'functional_tensor' in bare.stderr
    fixed = run_python('from sclle_basicsr import _compat; import basicsr; '
                       'import torchvision.transforms.functional_tensor as f, torchvision.transforms._functional_tensor as g; '
                       'assert f is g')
    assert fixed.returncode == 0, fixed.stderr


def test_mmseg_import_needs_the_mmcv_ext_standin():
    bare = run_python('import mmseg.models')
    assert bare.returncode != 0 and 'mmcv._ext' in bare.stderr
    fixed = run_python('from sclle_basicsr import _compat; import mmseg.models; import mmcv._ext as e; '
                       'assert e.__spec__ is not None and e.IS_SCLLE_STANDIN')
    assert fixed.returncode == 0, fixed.stderr


def test_standin_raises_when_a_compiled_op_is_called():
    from mmcv.ops import nms
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    with pytest.raises(_compat.CompiledOpUnavailable, match='nms'):
        nms(boxes, torch.tensor([1.0]), 0.5)


def test_standin_not_installed_when_the_real_extension_exists(monkeypatch):
    real_find_spec = _compat.importlib.util.find_spec
    monkeypatch.delitem(sys.modules, _compat.MMCV_EXT)
    monkeypatch.setattr(_compat.importlib.util, 'find_spec',
                        lambda name, *a: object() if name == _compat.MMCV_EXT else real_find_spec(name, *a))
    assert _compat.install_mmcv_ext_standin() is False
    assert _compat.MMCV_EXT not in sys.modules


def write_states(root, iters):
    states = osp.join(root, 'training_states')
    models = osp.join(root, 'models')
    for folder in (states, models):
        import os
        os.makedirs(folder, exist_ok=True)
    for it in iters:
        torch.save({'epoch': 0, 'iter': it, 'optimizers': [], 'schedulers': []}, osp.join(states, f'{it}.state'))
    return {'auto_resume': True, 'network_g': {}, 'path': {'experiments_root': str(root), 'models': models}}


@pytest.mark.skipif(torch.cuda.is_available(), reason='shows the CPU failure of BasicSR\'s own loader')
def test_basicsr_resume_loader_fails_on_cpu_and_ours_works(tmp_path):
    opt = write_states(tmp_path, [4, 12])
    alias_only = ('import importlib, sys; sys.modules["torchvision.transforms.functional_tensor"] = '
                  'importlib.import_module("torchvision.transforms._functional_tensor"); ')
    code = (alias_only + 'import basicsr.train, os; '
            f'os.chdir({str(tmp_path.parent)!r}); '
            f'basicsr.train.load_resume_state({{"auto_resume": False, "path": {{"resume_state": '
            f'{str(tmp_path / "training_states" / "12.state")!r}}}}})')
    bare = run_python(code)
    assert bare.returncode != 0 and ('cuda' in bare.stderr.lower() or 'CUDA' in bare.stderr)

    import basicsr.train
    assert basicsr.train.load_resume_state is _compat.load_resume_state
    state = basicsr.train.load_resume_state(opt)
    assert state['iter'] == 12
    assert opt['path']['resume_state'].endswith('12.state')
    assert opt['path']['pretrain_network_g'].endswith('net_g_12.pth')  # BasicSR's check_resume ran


def test_resume_without_states_starts_fresh(tmp_path):
    opt = {'auto_resume': True, 'path': {'experiments_root': str(tmp_path)}}
    assert _compat.load_resume_state(opt) is None


def test_missing_resume_state_names_the_option(tmp_path):
    opt = {'auto_resume': False, 'path': {'resume_state': str(tmp_path / 'nope.state')}}
    with pytest.raises(FileNotFoundError, match='resume_state'):
        _compat.load_resume_state(opt)


def test_sampler_forwards_the_epoch_to_the_dataset():
    from basicsr.data.data_sampler import EnlargedSampler

    class Dataset(torch.utils.data.Dataset):
        epoch = None

        def __len__(self):
            return 4

        def set_epoch(self, epoch):
            self.epoch = epoch

    dataset = Dataset()
    EnlargedSampler(dataset, num_replicas=1, rank=0).set_epoch(3)
    assert dataset.epoch == 3
    EnlargedSampler(torch.utils.data.TensorDataset(torch.zeros(2)), 1, 0).set_epoch(1)  # no set_epoch: fine
