"""The demo's pieces (the whole demo is `make demo`, minutes long): data built from installed files, log parsing,
and the two sheet and plot scripts run through their command lines."""
import cv2
import numpy as np
import pytest
from conftest import load_script

from sclle_basicsr.runner.training_log import parse_losses, read_run_losses, read_run_validation
from sclle_basicsr.study import demo
from sclle_basicsr.study.contact_sheet import validation_sheet


def test_demo_data_has_aligned_labels_and_every_folder(tmp_path):
    demo.build_demo_data(str(tmp_path), num_scenes=3)
    for folder, count in [('scenes', 3), ('labels', 3), ('positive', 7), ('under', 7), ('over', 7), ('val', 3)]:
        assert len(list((tmp_path / folder).iterdir())) == count, folder
    scene = cv2.imread(str(tmp_path / 'scenes' / 'scene00.png'))
    label = cv2.imread(str(tmp_path / 'labels' / 'scene00.png'), cv2.IMREAD_UNCHANGED)
    assert label.shape == scene.shape[:2] and label.dtype == np.uint8
    classes = set(np.unique(label)) - {255}
    assert classes and max(classes) < demo.NUM_CLASSES
    assert (scene[label == 255] == 0).all()  # unlabelled pixels are the empty background
    under = cv2.imread(str(tmp_path / 'under' / 'astronaut.png')).mean()
    over = cv2.imread(str(tmp_path / 'over' / 'astronaut.png')).mean()
    assert under < cv2.imread(str(tmp_path / 'positive' / 'astronaut.png')).mean() < over


def test_demo_refuses_another_data_folder(tmp_path):
    with pytest.raises(ValueError, match='demo_data'):
        demo.check_data_root(str(tmp_path))
    demo.check_data_root(demo.DEMO_DATA)
    demo.check_data_root(str(tmp_path.cwd() / 'demo_data'))  # relative to the working directory
    with pytest.raises(SystemExit, match='--data'):
        load_script('run_demo').main(['--data', str(tmp_path)])
    with pytest.raises(SystemExit, match='--total_iter 9: at least 10, the interval at which .* logs the losses'):
        demo.main(['--total_iter', '9'])


def test_validation_sheet_has_a_row_per_image_and_a_column_per_round(tmp_path):
    (tmp_path / 'val').mkdir()
    for name in ('a', 'b'):
        cv2.imwrite(str(tmp_path / 'val' / f'{name}.png'), np.full((20, 30, 3), 50, np.uint8))
        (tmp_path / 'vis' / name).mkdir(parents=True)
        for it in (100, 50):
            cv2.imwrite(str(tmp_path / 'vis' / name / f'{name}_{it}.png'), np.full((20, 30, 3), it, np.uint8))
    for other in ('a_best.png', 'a_x_70.png', '._a_10.png'):  # not a validation round of image a
        cv2.imwrite(str(tmp_path / 'vis' / 'a' / other), np.full((20, 30, 3), 255, np.uint8))
    sheet = validation_sheet(str(tmp_path / 'val'), str(tmp_path / 'vis'), height=40)
    assert sheet.shape == (80, 3 * 60, 3)  # 2 rows of 40 px; input + 2 rounds of 60 px each
    assert [int(np.median(sheet[30:40, 60 * i:60 * (i + 1)])) for i in range(3)] == [50, 50, 100]  # by iteration


def test_loss_curves_are_parsed_from_basicsr_log_lines():
    log = ('2026 INFO: [SCLLL..][epoch:  0, iter:      20, lr:(1.000e-03,)] [eta: 0:04:41, time (data): 1.2 (0.2)] '
           'l_con: 6.7e+00 l_sc: 2.9e+00 l_total: 1.0e+01\n  total_iter: 150\n'
           '2026 INFO: [SCLLL..][epoch:  1, iter:   1,040, lr:(1.000e-03,)] [eta] l_con: 6.5e+00 l_sc: 2.8e+00 '
           'l_total: 9.0e+00\n')
    curves = parse_losses(log)
    assert curves == {'l_con': [(20, 6.7), (1040, 6.5)], 'l_sc': [(20, 2.9), (1040, 2.8)],
                      'l_total': [(20, 10.0), (1040, 9.0)]}


def test_plot_training_log_merges_resumed_logs(tmp_path, capsys):
    line = ('2026-11-23 14:30:37,268 INFO: [SCLLL..][epoch:  2, iter:     {it}, lr:(5.000e-04,)] [eta: 3:31:20, '
            'time (data): 4.871 (0.010)] l_con: {v:.4e} l_total: {v:.4e} \n')
    (tmp_path / 'train_x_20261123_100000.log').write_text(''.join(line.format(it=i, v=i) for i in (25, 50, 75)))
    (tmp_path / 'train_x_20261123_110000.log').write_text(''.join(line.format(it=i, v=i + 1) for i in (75, 100)))
    curves, logs = read_run_losses(str(tmp_path))
    assert len(logs) == 2
    assert curves['l_con'] == [(25, 25.0), (50, 50.0), (75, 76.0), (100, 101.0)]  # the resumed run's value wins
    main = load_script('plot_training_log').main
    main([str(tmp_path), '--smooth', '2'])
    assert (tmp_path / 'loss_curves.png').stat().st_size > 0
    assert 'iterations up to 100: l_con, l_total' in capsys.readouterr().out
    with pytest.raises(SystemExit, match='no train_'):
        main([str(tmp_path / 'missing')])


def test_validation_curves_from_resumed_logs(tmp_path, capsys):
    """BasicSR's validation blocks carry no iteration: each belongs to the training line logged before it."""
    step = ('2026-12-02 18:17:53,847 INFO: [ablat..][epoch:  0, iter:   {it:,}, lr:(5.000e-04,)] [eta: 3:03:01, '
            'time (data): 1.516 (0.013)] l_con: 3.5e+00 l_total: 3.8e+00\n')
    block = ('2026-12-02 18:47:53,847 INFO: Validation {name}\n\t # niqe: {v:.4f}\tBest: {v:.4f} @ {it} iter\n\n')
    first = ''.join(step.format(it=it) + ''.join(block.format(name=n, v=v + it / 1000, it=it)
                                                 for n, v in (('DICM', 4.0), ('LIME', 5.0)))
                    for it in (1000, 2000))
    resumed = step.format(it=2000) + block.format(name='DICM', v=3.5, it=2000) + step.format(it=2025)
    (tmp_path / 'train_x_20261202_100000.log').write_text(first)
    (tmp_path / 'train_x_20261202_110000.log').write_text(resumed)
    curves, _ = read_run_validation(str(tmp_path))
    assert curves == {('DICM', 'niqe'): [(1000, 5.0), (2000, 3.5)], ('LIME', 'niqe'): [(1000, 6.0), (2000, 7.0)]}
    load_script('plot_training_log').main([str(tmp_path)])
    assert (tmp_path / 'validation_curves.png').stat().st_size > 0
    assert 'validation up to iteration 2000: niqe of DICM, niqe of LIME' in capsys.readouterr().out


def test_demo_draws_the_merged_curves_and_reports_every_validation(tmp_path, monkeypatch):
    """What the demo does after training, on the logs of a run that was resumed once."""
    data, run = tmp_path / 'demo_data', tmp_path / 'experiments' / demo.RUN_NAME

    def train(total_iter):  # two logs, iteration 20 logged again after the resume
        line = '2026 INFO: [SCLLL..][epoch:  0, iter:      {it}, lr:(1.0e-03,)] l_con: {v} \n'
        run.mkdir(parents=True)
        (run / 'train_SCLLLE_demo_20260101_100000.log').write_text(
            line.format(it=10, v=3.0) + line.format(it=20, v=2.0) + '# niqe: 5.1\n')
        (run / 'train_SCLLLE_demo_20260101_110000.log').write_text(line.format(it=20, v=2.5) + '# niqe: 4.9\n')
        (run / 'visualization' / 'v').mkdir(parents=True)
        cv2.imwrite(str(run / 'visualization' / 'v' / 'v_20.png'), np.full((20, 30, 3), 90, np.uint8))

    def build(root):
        (data / 'val').mkdir(parents=True)
        cv2.imwrite(str(data / 'val' / 'v.png'), np.full((20, 30, 3), 30, np.uint8))

    curves = []
    monkeypatch.chdir(tmp_path)  # the demo writes under the working directory
    monkeypatch.setattr(demo, 'build_demo_data', build)
    monkeypatch.setattr(demo, 'train', train)
    monkeypatch.setattr(demo, 'plot_losses', lambda c, path: curves.append(c))
    run_dir, niqe = demo.run_demo(total_iter=20, data_root=str(data))
    assert run_dir == str(run) and niqe == ['5.1', '4.9']
    assert curves == [{'l_con': [(10, 3.0), (20, 2.5)]}]
    assert cv2.imread(str(run / 'contact_sheet.png')).shape == (200, 2 * 300, 3)


def test_compare_sheet_rows_and_columns(tmp_path):
    import torch

    from sclle_basicsr.archs.dcenet_arch import DCENet
    main = load_script('compare_sheet').main
    torch.manual_seed(0)
    weights = tmp_path / 'net.pth'
    torch.save({'params': DCENet().state_dict()}, weights)
    images = []
    for i, shape in enumerate([(40, 60, 3), (30, 30, 3)]):
        images.append(str(tmp_path / f'img{i}.png'))
        cv2.imwrite(images[-1], np.full(shape, 40 + 20 * i, np.uint8))
    out = tmp_path / 'sheet.png'
    main(['--images', *images, '--checkpoints', f'a={weights}', f'b={weights}', '--out', str(out), '--height', '50'])
    sheet = cv2.imread(str(out))
    assert sheet.shape[0] == 100 and sheet.shape[1] == 3 * 75  # 2 rows of 50 px; widest row: 3 tiles of 75 px
    with pytest.raises(SystemExit, match='exists'):
        main(['--images', *images, '--checkpoints', f'a={weights}', '--out', str(out)])
    with pytest.raises(SystemExit, match='--out'):
        main(['--images', *images, '--checkpoints', f'a={weights}', '--out', str(tmp_path / 'sheet.unknown')])
    with pytest.raises(SystemExit, match='--checkpoints identity: the first column of the sheet is the input'):
        main(['--images', *images, '--checkpoints', 'identity', f'a={weights}', '--out', str(tmp_path / 'id.png')])
    assert not (tmp_path / 'id.png').exists()
