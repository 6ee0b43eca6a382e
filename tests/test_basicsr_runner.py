"""The fixes of prepare_basicsr_runner, one by one: BasicSR's own runner fails (fresh interpreter), ours works."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from basicsr.data.data_sampler import EnlargedSampler

from sclle_basicsr.runner.basicsr_runner import (
    ResumableEnlargedSampler,
    ResumeMismatchError,
    UnreadableStateError,
    load_resume_state,
    read_training_state,
)


def write_run(root, iters, corrupt=()):
    """A run folder with training states and net_g checkpoints at ``iters``; ``corrupt`` maps a file name to bytes."""
    states, models = osp.join(root, 'training_states'), osp.join(root, 'models')
    os.makedirs(states, exist_ok=True)
    os.makedirs(models, exist_ok=True)
    for it in iters:
        torch.save({'epoch': 0, 'iter': it, 'optimizers': [], 'schedulers': []}, osp.join(states, f'{it}.state'))
        torch.save({'params': {'w': torch.full((2, ), float(it))}}, osp.join(models, f'net_g_{it}.pth'))
    for name, content in dict(corrupt).items():
        folder = states if '.state' in name else models
        with open(osp.join(folder, name), 'wb') as f:
            f.write(content)
    return {'auto_resume': True, 'network_g': {}, 'path': {'experiments_root': str(root), 'models': models}}


@pytest.mark.skipif(torch.cuda.is_available(), reason="shows the CPU failure of BasicSR's own loader")
def test_basicsr_resume_loader_fails_on_cpu_and_ours_works(tmp_path):
    opt = write_run(tmp_path, [4, 12])
    code = ('import sclle_basicsr, basicsr.train; '
            'basicsr.train.load_resume_state({"auto_resume": False, "path": {"resume_state": '
            f'{str(tmp_path / "training_states" / "12.state")!r}}}}})')
    bare = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300)
    assert bare.returncode != 0 and 'cuda' in bare.stderr.lower()

    state = load_resume_state(opt)
    assert state['iter'] == 12
    assert opt['path']['resume_state'].endswith('12.state')
    assert opt['path']['pretrain_network_g'].endswith('net_g_12.pth')  # BasicSR's check_resume ran


@pytest.mark.parametrize('corrupt', [b'', b'PK\x03\x04 truncated zip', b'\x80\x04not a pickle'],
                         ids=['empty', 'truncated', 'garbage'])
def test_auto_resume_skips_an_unreadable_newest_state_naming_it(tmp_path, corrupt):
    opt = write_run(tmp_path, [4, 8], corrupt={'12.state': corrupt})
    with pytest.warns(RuntimeWarning, match=r'skipped a state: training state .*12\.state cannot be read'):
        state = load_resume_state(opt)
    assert state['iter'] == 8 and opt['path']['pretrain_network_g'].endswith('net_g_8.pth')


def test_auto_resume_skips_a_state_whose_network_file_is_missing_or_unreadable(tmp_path):
    opt = write_run(tmp_path, [4, 8, 12], corrupt={'net_g_12.pth': b''})
    os.remove(osp.join(tmp_path, 'models', 'net_g_8.pth'))
    with pytest.warns(RuntimeWarning) as record:
        state = load_resume_state(opt)
    messages = ' | '.join(str(w.message) for w in record)
    assert 'net_g_12.pth cannot be read' in messages and 'net_g_8.pth does not exist' in messages
    assert state['iter'] == 4


def test_auto_resume_with_no_readable_state_starts_fresh_and_says_so(tmp_path):
    opt = write_run(tmp_path, [], corrupt={'6.state': b''})
    with pytest.warns(RuntimeWarning, match='no readable training state'):
        assert load_resume_state(opt) is None
    assert not opt['path'].get('resume_state')


def test_resume_without_states_starts_fresh(tmp_path):
    opt = {'auto_resume': True, 'path': {'experiments_root': str(tmp_path), 'models': str(tmp_path / 'models')}}
    assert load_resume_state(opt) is None


def test_auto_resume_removes_what_a_killed_save_left_and_nothing_else(tmp_path, capsys):
    opt = write_run(tmp_path, [4], corrupt={'.5.state.sclle-tmp-999999999-k2j4': b'half',
                                            '.net_g_5.pth.sclle-tmp-999999999-x8f1': b'half', 'notes.partial': b'mine'})
    assert load_resume_state(opt)['iter'] == 4
    assert sorted(os.listdir(tmp_path / 'training_states')) == ['4.state']
    assert sorted(os.listdir(tmp_path / 'models')) == ['net_g_4.pth', 'notes.partial']
    assert '.5.state.sclle-tmp-999999999-k2j4' in capsys.readouterr().out


def test_explicit_resume_state_must_be_readable(tmp_path):
    opt = write_run(tmp_path, [], corrupt={'6.state': b''})
    opt.update(auto_resume=False)
    opt['path']['resume_state'] = str(tmp_path / 'nope.state')
    with pytest.raises(FileNotFoundError, match=r'nope\.state \(path\.resume_state\)'):
        load_resume_state(opt)
    opt['path']['resume_state'] = str(tmp_path / 'training_states' / '6.state')
    with pytest.raises(UnreadableStateError, match=r'6\.state cannot be read.*\(path\.resume_state\)'):
        load_resume_state(opt)


@pytest.mark.parametrize('changed', ['batch_size_per_gpu', 'world_size'])
def test_resuming_with_another_batch_layout_is_refused(tmp_path, changed):
    """The sampler places a resumed epoch by iterations x batch size: with another batch size (or number of
    processes) than the state was trained with it would leave out the wrong samples and log the wrong count."""
    opt = write_run(tmp_path, [6])
    state_path = tmp_path / 'training_states' / '6.state'
    state = torch.load(state_path, weights_only=False)
    torch.save({**state, 'batch': {'batch_size': 2, 'world_size': 1}}, state_path)
    opt.update({'dist': changed == 'world_size', 'num_gpu': 0, 'world_size': 2 if changed == 'world_size' else 1,
                'datasets': {'train': {'batch_size_per_gpu': 4 if changed == 'batch_size_per_gpu' else 2}}})
    with pytest.raises(ResumeMismatchError) as err:
        load_resume_state(opt)
    given = '4 and 1' if changed == 'batch_size_per_gpu' else '2 and 2'
    assert str(err.value) == (f'training state {state_path} was trained with batch size 2 per process and 1 '
                              f'process(es); these options give {given} (datasets.train.batch_size_per_gpu, number '
                              'of processes), so the run would not continue where it stopped: set them back to '
                              'resume, or train under another name (option name)')
    opt['datasets']['train']['batch_size_per_gpu'], opt['world_size'], opt['dist'] = 2, 1, False
    assert load_resume_state(opt)['iter'] == 6  # the same layout resumes


def test_read_training_state_rejects_other_pickles(tmp_path):
    torch.save({'params': {}}, tmp_path / '3.state')
    with pytest.raises(UnreadableStateError, match='not a BasicSR training state'):
        read_training_state(str(tmp_path / '3.state'), {'path': {}})


class EpochDataset(torch.utils.data.Dataset):
    epoch = None

    def __len__(self):
        return 10

    def __getitem__(self, index):
        return index

    def set_epoch(self, epoch):
        self.epoch = epoch


def plan(epoch=None, current_iter=None, batch_size=2, **train):
    opt = {'dist': False, 'num_gpu': 0, 'datasets': {'train': {'batch_size_per_gpu': batch_size, **train}}}
    ResumableEnlargedSampler.plan_next(opt, None if epoch is None else {'epoch': epoch, 'iter': current_iter})


def test_sampler_forwards_the_epoch_to_the_dataset():
    dataset = EpochDataset()
    ResumableEnlargedSampler(dataset, num_replicas=1, rank=0).set_epoch(3)
    assert dataset.epoch == 3
    EnlargedSampler(dataset, num_replicas=1, rank=0).set_epoch(5)  # BasicSR's own does not
    assert dataset.epoch == 3
    ResumableEnlargedSampler(torch.utils.data.TensorDataset(torch.zeros(2)), 1, 0).set_epoch(1)  # no set_epoch: fine


def test_sampler_leaves_out_the_trained_part_of_the_resumed_epoch_only():
    """5 iterations of 2 samples per epoch; stopped at iteration 7 = epoch 1, 2 of its iterations done."""
    full = {epoch: list(_epoch_indices(EnlargedSampler(EpochDataset(), 1, 0), epoch)) for epoch in (1, 2)}
    plan(epoch=1, current_iter=7)
    sampler = ResumableEnlargedSampler(EpochDataset(), 1, 0)
    list(sampler)  # BasicSR's prefetcher iterates once before the first set_epoch: that changes nothing
    assert list(_epoch_indices(sampler, 1)) == full[1][4:]
    assert list(_epoch_indices(sampler, 1)) == full[1][4:]  # the rule is the epoch's, not a one-shot
    assert list(_epoch_indices(sampler, 2)) == full[2]


def test_sampler_resumed_on_an_epochs_last_iteration_yields_no_batch():
    plan(epoch=1, current_iter=10)
    loader = torch.utils.data.DataLoader(EpochDataset(), batch_size=2, drop_last=True,
                                         sampler=ResumableEnlargedSampler(EpochDataset(), 1, 0))
    loader.sampler.set_epoch(1)
    assert list(loader) == []
    loader.sampler.set_epoch(2)
    assert len(list(loader)) == 5


def test_sampler_with_a_state_that_does_not_fit_resumes_at_the_epoch_start():
    plan(epoch=0, current_iter=9)  # 9 > 5 iterations per epoch: batch size or dataset changed
    sampler = ResumableEnlargedSampler(EpochDataset(), 1, 0)
    assert len(list(_epoch_indices(sampler, 0))) == 10


def test_sampler_takes_its_plan_once():
    plan(epoch=0, current_iter=2)
    assert len(list(ResumableEnlargedSampler(EpochDataset(), 1, 0))) == 6
    assert len(list(ResumableEnlargedSampler(EpochDataset(), 1, 0))) == 10


def test_persistent_workers_with_an_epoch_aware_dataset_is_refused():
    plan(num_worker_per_gpu=2, persistent_workers=True)
    with pytest.raises(ValueError, match='persistent_workers'):
        ResumableEnlargedSampler(EpochDataset(), 1, 0)
    plan(num_worker_per_gpu=2, persistent_workers=True)
    ResumableEnlargedSampler(torch.utils.data.TensorDataset(torch.zeros(2)), 1, 0)  # no set_epoch: nothing to lose


def _epoch_indices(sampler, epoch):
    sampler.set_epoch(epoch)
    return iter(sampler)


@pytest.mark.skipif(torch.cuda.is_available(), reason="shows the CPU failure of BasicSR's own launcher")
def test_basicsr_pytorch_launcher_fails_on_cpu_and_ours_uses_gloo():
    env = {**os.environ, 'RANK': '0', 'LOCAL_RANK': '0', 'WORLD_SIZE': '1', 'MASTER_ADDR': '127.0.0.1',
           'MASTER_PORT': '29547'}
    code = ('import sclle_basicsr, basicsr.utils.options as options, torch.distributed as dist; {prepare}'
            'options.init_dist("pytorch"); print(dist.get_backend())')
    bare, fixed = (subprocess.run([sys.executable, '-c', code.format(prepare=prepare)], env=env, capture_output=True,
                                  text=True, timeout=300)
                   for prepare in ('', 'sclle_basicsr.prepare_basicsr_runner(); '))
    assert bare.returncode != 0 and 'ZeroDivisionError' in bare.stderr
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.split()[-1] == 'gloo' and 'instead of nccl' in fixed.stdout
