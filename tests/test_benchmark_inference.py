"""The inference benchmark on a tiny image: every configuration runs, agrees with torch fp32, and is reported."""
import json

import pytest
from conftest import load_script

from sclle_basicsr.benchmarks.inference_paths import CONFIGS
from sclle_basicsr.benchmarks.inference_race import measure_rss, paired_quartiles, paired_ratio, run_race


def test_tiny_race_reports_every_available_configuration(tmp_path, capsys):
    main = load_script('benchmark_inference').main
    report = main(['--sizes', '0.01,0.02', '--tile_above', '0.015', '--tile', '64', '--repeats', '1',
                   '--large_repeats', '1', '--matmul_size', '256', '--no_rss', '--json', str(tmp_path / 'r.json')])
    ran = {r['config'] for r in report['results']}
    assert ran | set(report['machine']['skipped']) == set(CONFIGS)
    assert {'eager', 'torch-fp32'} <= ran
    for row in report['results']:
        assert row['mp_per_s'] > 0
        if row['precision'] == 'fp32':
            assert row['max_abs_diff_vs_fp32'] <= 1e-5, row
        else:
            assert row['psnr_vs_fp32_db'] >= 60, row
    tiled = [r for r in report['results'] if r['mp'] == 0.02]
    assert tiled and all(r['tile'] == 64 for r in tiled)
    assert report['targets'] and json.loads((tmp_path / 'r.json').read_text()) == json.loads(json.dumps(report))
    out = capsys.readouterr().out
    assert '| MP | path | MP/s |' in out and 'eager DCENet.forward' in out


def test_the_ratio_pairs_each_round():
    # 10 % slower than the peer in every round, whatever the load of that round
    assert paired_ratio([1.1, 2.2, 1.1], [1.0, 2.0, 1.0]) == pytest.approx(1 / 1.1, abs=1e-3)
    assert paired_ratio([1.0, 3.0, 1.0], [1.0, 1.0, 1.0]) == 1.0  # one disturbed run does not move the median
    assert paired_quartiles([1.0] * 3, [1.0] * 3) is None
    low, high = paired_quartiles([1.0, 1.0, 1.0, 1.0, 2.0], [1.0, 1.1, 0.9, 1.0, 1.0])
    assert low < 1.0 < high


def test_peak_rss_is_measured_in_a_fresh_process():
    row = measure_rss('torch-fp32', 0.01, threads=1, tile=0, tile_above=4.0)
    assert row['peak_rss_mb'] >= row['rss_before_run_mb'] > 0


def test_unknown_configuration_is_refused(capsys):
    with pytest.raises(SystemExit):
        load_script('benchmark_inference').main(['--configs', 'tensorrt-fp32'])
    assert 'unknown configuration tensorrt-fp32' in capsys.readouterr().err
    with pytest.raises(ValueError, match='tensorrt-fp32'):
        run_race([0.01], ['tensorrt-fp32'])
