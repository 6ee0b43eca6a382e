"""Atomic files and the models' atomic checkpoint / training-state saving (same files as BasicSR's), and a failed
save stopping the run with the reason."""
import contextlib
import errno
import os

import pytest
import torch
from basicsr.models.base_model import BaseModel

from sclle_basicsr.models import atomic_checkpoints
from sclle_basicsr.models.atomic_checkpoints import AtomicCheckpointsMixin, CheckpointSaveError
from sclle_basicsr.utils.atomic_files import is_temporary


class TinyModel(AtomicCheckpointsMixin, BaseModel):

    def __init__(self, root):
        os.makedirs(root / 'models', exist_ok=True)
        os.makedirs(root / 'training_states', exist_ok=True)
        super().__init__({'num_gpu': 0, 'is_train': True, 'dist': False,
                          'path': {'models': str(root / 'models'), 'training_states': str(root / 'training_states')}})
        torch.manual_seed(0)
        self.net_g, self.net_g_ema = torch.nn.Conv2d(3, 3, 3), torch.nn.Conv2d(3, 3, 3)
        self.optimizers = [torch.optim.Adam(self.net_g.parameters())]
        self.schedulers = [torch.optim.lr_scheduler.MultiStepLR(self.optimizers[0], [10])]
        self.net_g(torch.rand(1, 3, 8, 8)).sum().backward()
        self.optimizers[0].step()
        self.schedulers[0].step()


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def test_saves_the_files_basicsr_saves(tmp_path):
    ours, basicsr = TinyModel(tmp_path / 'ours'), TinyModel(tmp_path / 'basicsr')
    for model, save_network, save_state in ((ours, ours.save_network, ours.save_training_state),
                                            (basicsr, BaseModel.save_network.__get__(basicsr),
                                             BaseModel.save_training_state.__get__(basicsr))):
        save_network([model.net_g, model.net_g_ema], 'net_g', 5, param_key=['params', 'params_ema'])
        save_network(model.net_g, 'net_g', -1)
        save_state(3, 5)
        save_state(3, -1)
    for name in ('models/net_g_5.pth', 'models/net_g_latest.pth', 'training_states/5.state'):
        assert_same(torch.load(tmp_path / 'ours' / name, weights_only=False),
                    torch.load(tmp_path / 'basicsr' / name, weights_only=False))
    assert sorted(os.listdir(tmp_path / 'ours' / 'training_states')) == ['5.state']
    assert not [n for n in os.listdir(tmp_path / 'ours' / 'models') if is_temporary(n)]


def test_a_failing_save_is_retried_then_stops_the_run_and_leaves_no_file(tmp_path, monkeypatch, caplog):
    model = TinyModel(tmp_path)
    monkeypatch.setattr(atomic_checkpoints.time, 'sleep', lambda seconds: None)
    os.rmdir(tmp_path / 'training_states')
    with caplog.at_level('WARNING', logger='basicsr'), pytest.raises(CheckpointSaveError) as err:
        model.save_training_state(0, 7)
    assert caplog.text.count('7.state failed') == 3
    assert str(err.value).startswith(f'cannot save {tmp_path / "training_states" / "7.state"} (3 tries): No such '
                                     f'file or directory ({tmp_path / "training_states"})')
    assert not (tmp_path / 'training_states').exists()


class DiskFull:
    """A file whose writes fail as on a full disk, after the first ``room`` bytes."""

    def __init__(self, f, room=100):
        self.f, self.room = f, room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.mark.parametrize('what', ['state', 'network'])
def test_a_full_disk_stops_the_run_at_once_saying_so_and_keeps_the_previous_file(tmp_path, monkeypatch, what):
    """torch.save reports a failed write as "unexpected pos"; the error says "No space left on device" instead,
    without retrying, and the file already there stays as it was."""
    model = TinyModel(tmp_path)
    save = (lambda: model.save_training_state(0, 7)) if what == 'state' else \
        (lambda: model.save_network(model.net_g, 'net_g', -1))
    path = tmp_path / ('training_states/7.state' if what == 'state' else 'models/net_g_latest.pth')
    path.write_bytes(b'previous')
    opened = []
    real_atomic_open = atomic_checkpoints.atomic_open

    @contextlib.contextmanager
    def full_disk_open(target, mode):
        with real_atomic_open(target, mode) as f:
            opened.append(target)
            yield DiskFull(f)

    monkeypatch.setattr(atomic_checkpoints, 'atomic_open', full_disk_open)
    with pytest.raises(CheckpointSaveError) as err:
        save()
    assert str(err.value).startswith(f'cannot save {path}: No space left on device (free space on {path.parent})')
    assert 'unexpected pos' in str(err.value.__cause__) and len(opened) == 1  # torch's words; no retry
    assert path.read_bytes() == b'previous' and sorted(os.listdir(path.parent)) == [path.name]


def test_a_training_state_records_its_batch_layout(tmp_path):
    model = TinyModel(tmp_path)
    model.opt.update({'datasets': {'train': {'batch_size_per_gpu': 3}}, 'world_size': 1, 'num_gpu': 0})
    model.save_training_state(1, 9)
    state = torch.load(tmp_path / 'training_states' / '9.state', weights_only=False)
    assert state['batch'] == {'batch_size': 3, 'world_size': 1}
