"""The inference benchmark on a tiny image: every configuration runs, agrees with torch fp32, and is reported."""
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'scripts'))
import benchmark_inference  # noqa: E402


def test_tiny_race_reports_every_available_configuration(tmp_path):
    report = benchmark_inference.main(['--sizes', '0.01,0.02', '--tile-above', '0.015', '--tile', '64', '--repeats',
                                       '1', '--large-repeats', '1', '--matmul-size', '256', '--no-rss',
                                       '--json', str(tmp_path / 'r.json')])
    ran = {r['config'] for r in report['results']}
    assert ran | set(report['machine']['skipped']) == set(benchmark_inference.CONFIGS)
    assert {'eager', 'torch-fp32'} <= ran
    for row in report['results']:
        assert row['mp_per_s'] > 0
        if row['precision'] == 'fp32':
            assert row['max_abs_diff_vs_fp32'] <= 1e-5, row
        else:
            assert row['psnr_vs_fp32_db'] >= 60, row
    tiled = [r for r in report['results'] if r['mp'] == 0.02]
    assert tiled and all(r['tile'] == 64 for r in tiled)
    assert report['targets'] and (tmp_path / 'r.json').is_file()


def test_peak_rss_is_measured_in_a_fresh_process():
    args = _Args(threads=1, tile=0, tile_above=4.0, model_path=None)
    row = benchmark_inference.measure_rss('torch-fp32', 0.01, args)
    assert row['peak_rss_mb'] >= row['rss_before_run_mb'] > 0


class _Args:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_unknown_configuration_is_refused():
    with pytest.raises(SystemExit):
        benchmark_inference.main(['--configs', 'tensorrt-fp32'])
