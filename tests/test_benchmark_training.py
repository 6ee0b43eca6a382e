"""The training-step benchmark's naive composition must compute the same objective as the project's step.

Not a timing test: it only checks that both paths start from the same weights and data and log the same
l_total, so the benchmark's ratio compares like with like.
"""
import pytest
from conftest import load_script

from sclle_basicsr.benchmarks.training_step import run_training_benchmark


def test_naive_and_project_steps_compute_the_same_losses(tmp_path, capsys):
    main = load_script('benchmark_training').main
    report = main(['--size', '64', '--batch', '1', '--repeats', '2', '--json', str(tmp_path / 'step.json')])
    res = report['results']
    assert len(res['project']['l_total_per_step']) == 2
    assert res['project']['l_total_per_step'] == pytest.approx(res['naive']['l_total_per_step'], rel=1e-4)
    assert res['project']['ms_per_iter_median'] > 0 and res['naive']['ms_per_iter_median'] > 0
    assert (tmp_path / 'step.json').is_file()
    assert report['machine']['cpu'] and report['machine']['threads'] >= 1
    assert '| project |' in capsys.readouterr().out


def test_fp16_is_refused_without_a_grad_scaler():
    with pytest.raises(SystemExit):
        load_script('benchmark_training').main(['--amp', 'fp16'])
    with pytest.raises(ValueError, match='GradScaler'):
        run_training_benchmark(amp='fp16')
