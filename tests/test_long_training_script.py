"""scripts/run_long_training.sh: a recipe must be named, and git keeps exactly what a later session resumes from
(options, logs, the newest checkpoint and training state) while the study's generated data and the run lock stay
out."""
import os.path as osp
import shutil
import subprocess

import pytest

from sclle_basicsr.utils.assets import REPO_ROOT

SCRIPT = osp.join(REPO_ROOT, 'scripts', 'run_long_training.sh')


@pytest.mark.parametrize('args', [[], ['nosuchrecipe'], ['variance4k', 'nosuchaction']])
def test_a_missing_or_unknown_recipe_or_action_is_a_usage_error(args):
    done = subprocess.run(['bash', SCRIPT, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done
    usage = 'cosine8k|variance4k|variance100_4k' if len(args) < 2 else 'variance4k [prune]'
    assert 'usage:' in done.stderr and usage in done.stderr, done.stderr


def test_prune_without_a_training_state_is_an_error_that_names_the_folder(tmp_path):
    scripts = tmp_path / 'scripts'
    scripts.mkdir()
    shutil.copy(SCRIPT, scripts)
    (tmp_path / 'experiments/long_run_variance4k/experiments/ablation_full_wo_Lsc/training_states').mkdir(parents=True)
    done = subprocess.run(['bash', str(scripts / 'run_long_training.sh'), 'variance4k', 'prune'], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1
    assert 'no training state in experiments/long_run_variance4k/' in done.stderr


def _ignored(paths):
    done = subprocess.run(['git', 'check-ignore', '--no-index', *paths], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    if done.returncode == 128:
        pytest.skip(f'not a git checkout: {done.stderr.strip()}')
    return set(done.stdout.split())


@pytest.mark.parametrize('recipe', ['cosine8k', 'variance4k', 'variance100_4k'])
def test_git_keeps_the_resumable_state_of_each_long_run_and_not_its_data(recipe):
    run = f'experiments/long_run_{recipe}/experiments/ablation_full_wo_Lsc'
    kept = [f'experiments/long_run_{recipe}/options/ablation_full_wo_Lsc.yml', f'{run}/models/net_g_4000.pth',
            f'{run}/training_states/4000.state', f'{run}/train_ablation_full_wo_Lsc_20261204_183938.log']
    dropped = [f'experiments/long_run_{recipe}/data/sice/positive/a.png', f'experiments/long_run_{recipe}/table3.md',
               f'{run}/visualization/DICM/a.png',
               f'experiments/long_run_{recipe}/experiments/.ablation_full_wo_Lsc.lock',
               'experiments/ablation_study/options/ablation_full_wo_Lsc.yml']
    assert _ignored(kept + dropped) == set(dropped)
