"""Evaluation protocols of Tables 1, 2 and 4 (sclle_basicsr.evaluation and scripts/eval_table*.py)."""
import csv
import math
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_SEGMENTOR_CFG, load_script, require_asset

from sclle_basicsr import evaluation as ev
from sclle_basicsr.archs.segmentor_arch import FrozenDeepLabV3Plus
from sclle_basicsr.utils.image_files import list_images

TINY19 = {**TINY_SEGMENTOR_CFG, 'model.decode_head.num_classes': 19}


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------------------------------------------
# Shared


def test_parse_methods_and_output_folder(tmp_path):
    from sclle_basicsr.archs.dcenet_arch import DCENet
    w = tmp_path / 'w.pth'
    torch.save(DCENet().state_dict(), w)
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint')
    assert ev.parse_methods(['identity', f'a={w}']) == [('identity', None), ('a', str(w))]
    for bad, msg in ((['a'], 'name=path'), ([f'a={tmp_path}/none.pth'], 'not found'), ([f'a={w}', f'a={w}'], 'twice'),
                     ([f'identity={w}'], 'reserved'), ([], 'no checkpoints'),
                     ([f'a={text}'], rf'checkpoint {text} \(--checkpoints a={text}\) is not usable: .*cannot be read')):
        with pytest.raises(ev.EvaluationError, match=msg):
            ev.parse_methods(bad)
    out = tmp_path / 'out'
    ev.make_output_dir(str(out))
    (out / 'table1_niqe.md').write_text('old')
    with pytest.raises(ev.EvaluationError, match='--overwrite'):
        ev.make_output_dir(str(out))
    ev.make_output_dir(str(out), overwrite=True)
    with pytest.raises(ev.EvaluationError, match=rf'--out {text} is an existing file'):
        ev.make_output_dir(str(text), overwrite=True)
    with pytest.raises(ev.EvaluationError, match=rf'cannot create the output folder --out {text}/sub'):
        ev.make_output_dir(str(text / 'sub'))


@pytest.mark.parametrize('script', ['eval_table1_niqe', 'eval_table2_paired', 'eval_table4_segmentation'])
def test_scripts_answer_bad_out_and_unreadable_checkpoints_in_one_line(tmp_path, script, capsys):
    from sclle_basicsr.archs.dcenet_arch import DCENet
    good, text, a_file = tmp_path / 'w.pth', tmp_path / 'notes.txt', tmp_path / 'report.md'
    torch.save(DCENet().state_dict(), good)
    text.write_text('not a checkpoint')
    a_file.write_text('a report')
    extra = {'eval_table1_niqe': [], 'eval_table2_paired': ['--dataroot', str(tmp_path), '--no_lpips'],
             'eval_table4_segmentation': ['--seg_random_init']}[script]
    for checkpoint, out, expected in ((f'a={text}', tmp_path / 'o', f'error: checkpoint {text} (--checkpoints a='),
                                      (f'a={good}', a_file, f'error: --out {a_file} is an existing file')):
        with pytest.raises(SystemExit) as exc:
            load_script(script).main(['--checkpoints', checkpoint, '--out', str(out)] + extra)
        message = str(exc.value.code)
        assert message.startswith(expected) and '\n' not in message
    assert a_file.read_text() == 'a report' and not (tmp_path / 'o').exists()


# ----------------------------------------------------------------------------------------------------------------
# Table 1


def test_parse_runner_log():
    log = ('2024-01-02 10:00:00,000 INFO: Testing DICM...\n'
           '2024-01-02 10:00:05,500 INFO: Validation DICM\n\t # niqe: 3.7540\tBest: 3.7540 @ x iter\n\n'
           '2024-01-02 10:00:05,600 INFO: Testing LIME...\n'
           '2024-01-02 10:00:07,600 INFO: Validation LIME\n\t # niqe: 4.0130\tBest: 4.0130 @ x iter\n')
    res = ev.parse_runner_log(log, ['DICM', 'LIME'])
    assert res == {'DICM': {'niqe': 3.754, 'seconds': 5.5, 'left_out': {'niqe': 0}},
                   'LIME': {'niqe': 4.013, 'seconds': 2.0, 'left_out': {'niqe': 0}}}
    warning = ('2024-01-02 10:00:07,600 WARNING: niqe of LIME: 2 of 9 image(s) left out (cannot be scored, named '
               'above): a.png, b.png')
    warned = log.replace('\t # niqe: 4.0130', '\t # niqe: 4.0130\n' + warning)
    assert ev.parse_runner_log(warned, ['DICM', 'LIME'])['LIME']['left_out'] == {'niqe': 2}
    with pytest.raises(ev.EvaluationError, match='no NIQE logged for MEF'):
        ev.parse_runner_log(log, ['DICM', 'MEF'])
    more = log.replace('\t # niqe: 3.7540\tBest: 3.7540 @ x iter\n',
                       '\t # niqe: 3.7540\tBest: 3.7540 @ x iter\n\t # unique: -0.5000\tBest: x\n'
                       '\t # loe: 120.2500\tBest: x\n')
    assert ev.parse_runner_log(more, ['DICM'], ('niqe', 'unique', 'loe'))['DICM'] == {
        'niqe': 3.754, 'unique': -0.5, 'loe': 120.25, 'seconds': 5.5, 'left_out': {'niqe': 0, 'unique': 0, 'loe': 0}}
    with pytest.raises(ev.EvaluationError, match='no NIQE, LOE logged for LIME'):
        ev.parse_runner_log(more, ['DICM', 'LIME'], ('niqe', 'loe'))


def test_table1_through_the_runner(tmp_path, no_unique_weights):
    from basicsr.metrics import calculate_niqe
    dataroot = require_asset('lle_testsets')
    weights = require_asset('weights', 'sclle_official.pth')
    out = tmp_path / 'out'
    load_script('eval_table1_niqe').main(['--checkpoints', 'identity', f'sclle={weights}', '--sets', 'DICM',
                                          '--max_images', '1', '--dataroot', dataroot, '--out', str(out)])
    rows = {r['method']: r for r in read_csv(out / 'table1_niqe.csv')}
    assert list(read_csv(out / 'table1_niqe.csv')[0]) == ['method', 'DICM', 'average', 'DICM_UNIQUE', 'UNIQUE_average',
                                                          'DICM_LOE', 'LOE_average', 'DICM_s']
    first = list_images(osp.join(dataroot, 'DICM'))[0]
    expected = calculate_niqe(cv2.imread(first), crop_border=0, input_order='HWC', convert_to='y')
    assert float(rows['identity']['DICM']) == pytest.approx(expected, abs=1e-9)
    # the runner's value (4 decimals in its log) is lower than the input's, as in the paper
    assert 0 < float(rows['sclle']['DICM']) < expected
    assert float(rows['sclle']['average']) == float(rows['sclle']['DICM'])
    assert float(rows['sclle']['DICM_s']) > 0
    # LOE: 0 for the input itself; the released weights brighten with curves that nearly keep the lightness order
    assert float(rows['identity']['DICM_LOE']) == 0 and 0 < float(rows['sclle']['DICM_LOE']) < 0.1 * 50 * 67
    md = (out / 'table1_niqe.md').read_text()  # no UNIQUE weights here: marked unavailable, with where to get them
    assert rows['sclle']['DICM_UNIQUE'] == '' and f'UNIQUE: unavailable, not computed: UNIQUE weights not found: ' \
        f'{no_unique_weights}' in md
    with open(out / 'options' / 'test_sclle.yml') as f:
        opt = yaml.safe_load(f)
    assert opt['name'] == 'sclle' and opt['path']['pretrain_network_g'] == weights
    assert opt['network_g'] == {'type': 'DCENet', 'num_iterations': 8, 'num_features': 32}  # read from the weights
    assert osp.islink(out / 'inputs' / 'DICM' / osp.basename(first))
    assert '| identity |' in (out / 'table1_niqe.md').read_text()
    with pytest.raises(SystemExit, match='--overwrite'):  # an existing report is not overwritten
        load_script('eval_table1_niqe').main(['--checkpoints', 'identity', '--sets', 'DICM', '--out', str(out)])
    with pytest.raises(SystemExit, match='NOPE'):
        load_script('eval_table1_niqe').main(['--checkpoints', 'identity', '--sets', 'NOPE', '--dataroot', dataroot,
                                              '--out', str(tmp_path / 'o2')])


# ----------------------------------------------------------------------------------------------------------------
# Table 4


def test_miou_hand_computed():
    # 3 classes of 19 present; 255 ignored; class 2 predicted but never in GT; class 5 nowhere (excluded)
    label = np.array([[0, 0, 1, 1], [0, 1, 255, 255]])
    pred = np.array([[0, 1, 1, 1], [2, 1, 0, 5]])
    conf = ev.confusion_matrix(pred, label)
    assert conf.sum() == 6 and conf[0, 0] == 1 and conf[0, 1] == 1 and conf[0, 2] == 1 and conf[1, 1] == 3
    iou, miou = ev.iou_from_confusion(conf)
    # class 0: inter 1, union 3 (GT) + 1 (pred) - 1 = 3 -> 1/3; class 1: inter 3, union 3 + 4 - 3 = 4 -> 3/4;
    # class 2: inter 0, union 1 -> 0; class 5: predicted only on an ignored pixel -> union 0 -> excluded
    assert iou[0] == pytest.approx(1 / 3) and iou[1] == pytest.approx(0.75) and iou[2] == 0
    assert np.isnan(iou[3:]).all()
    assert miou == pytest.approx((1 / 3 + 0.75 + 0) / 3)
    # accumulation over images is over the summed confusion matrix, not a mean of per-image mIoUs
    conf2 = conf + ev.confusion_matrix(np.array([3]), np.array([3]))
    assert ev.iou_from_confusion(conf2)[1] == pytest.approx((1 / 3 + 0.75 + 0 + 1) / 4)


@pytest.fixture(scope='module')
def tiny_segmentor(tmp_path_factory):
    torch.manual_seed(0)
    seg = FrozenDeepLabV3Plus(cfg_options=TINY19, allow_random_init=True, fold_batch_norm=False)  # mmseg layout
    with torch.no_grad():  # large class scores, so that the prediction depends on the input
        seg.model.decode_head.conv_seg.weight.mul_(50)
    path = tmp_path_factory.mktemp('seg') / 'tiny19.pth'
    torch.save({'state_dict': seg.model.state_dict()}, path)
    return str(path)


def test_table4_cityscapes_mini(tmp_path, tiny_segmentor):
    root = require_asset('cityscapes_mini')
    weights = require_asset('weights', 'sclle_official.pth')
    seg = ev.build_segmentor(checkpoint=tiny_segmentor, cfg_options=TINY19)
    out = tmp_path / 'out'
    out.mkdir()
    rows, md = ev.run_table4([('identity', None), ('sclle', weights)], root, str(out), seg, gammas=(1, 6),
                             max_side=96)
    assert [r['method'] for r in rows] == ['identity', 'sclle']
    for r in rows:
        for g in ('gamma=1', 'gamma=6'):
            assert 0 <= r[g] <= 100
    # identity, gamma 1: the same as segmenting the (downscaled) originals directly
    conf = np.zeros((19, 19), dtype=np.int64)
    for img_path, label_path in ev.find_cityscapes_pairs(root):
        rgb, label = ev.load_cityscapes_pair(img_path, label_path, 96)
        assert max(label.shape) == 96 and set(np.unique(label)) <= set(range(19)) | {255}
        with torch.no_grad():
            pred = seg(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255).argmax(1)[0].numpy()
        conf += ev.confusion_matrix(pred, label)
    assert rows[0]['gamma=1'] == pytest.approx(100 * ev.iou_from_confusion(conf)[1])
    # the enhancer changes what the segmentor sees (compare the confusion matrices of gamma 6)
    pairs = ev.find_cityscapes_pairs(root)
    ident = ev.segment_miou(seg, None, pairs, (6, ), 96, log=lambda *_: None)[6][2]
    enh = ev.segment_miou(seg, ev.load_method(weights), pairs, (6, ), 96, log=lambda *_: None)[6][2]
    assert ident.sum() == enh.sum() and not np.array_equal(ident, enh)
    assert 'mmseg' in md and (out / 'table4_per_class_iou.csv').is_file()
    assert len(read_csv(out / 'table4_per_class_iou.csv')) == 4


def test_table4_cli(tmp_path, tiny_segmentor):
    import json
    root = require_asset('cityscapes_mini')
    script = load_script('eval_table4_segmentation')
    with pytest.raises(SystemExit, match='--seg_checkpoint is required'):
        script.main(['--checkpoints', 'identity', '--dataroot', root, '--out', str(tmp_path / 'a')])
    out = tmp_path / 'b'
    script.main(['--checkpoints', 'identity', '--dataroot', root, '--out', str(out), '--gammas', '2',
                 '--seg_checkpoint', tiny_segmentor, '--seg_cfg_options', json.dumps(TINY19), '--max_side', '48',
                 '--max_images', '1'])
    (row, ) = read_csv(out / 'table4_segmentation.csv')
    assert row['method'] == 'identity' and 0 <= float(row['gamma=2']) <= 100


# ----------------------------------------------------------------------------------------------------------------
# Table 2


def make_paired(root, count=2, size=(40, 56)):
    rng = np.random.default_rng(0)
    (root / 'low').mkdir(parents=True)
    (root / 'gt').mkdir()
    for i in range(count):
        small = rng.random((4, 5, 3)).astype(np.float32)
        gt = cv2.resize(small, (size[1], size[0]), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        low = gt ** 3 * 0.5
        cv2.imwrite(str(root / 'gt' / f'{i:03d}.png'), np.round(gt * 255).astype(np.uint8))
        cv2.imwrite(str(root / 'low' / f'{i:03d}.jpg' if i else root / 'low' / f'{i:03d}.png'),
                    np.round(low * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 100])
    return root


def psnr_rgb(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0 ** 2 / mse)


def test_table2_identity_psnr_and_errors(tmp_path):
    root = make_paired(tmp_path / 'set')
    out = tmp_path / 'out'
    out.mkdir()
    rows, md = ev.run_table2([('identity', None)], str(root), str(out), no_lpips=True)
    pairs = ev.match_pairs(str(root))
    assert [p[0] for p in pairs] == ['000', '001']
    expected = np.mean([psnr_rgb(cv2.imread(lo), cv2.imread(gt)) for _, lo, gt in pairs])
    assert rows[0]['PSNR'] == pytest.approx(expected, rel=1e-9)
    assert 0 < rows[0]['SSIM'] < 1 and rows[0]['LPIPS'] is None
    assert 'test_y_channel=False' in md

    (root / 'gt' / '002.png').write_bytes((root / 'gt' / '000.png').read_bytes())
    with pytest.raises(ev.EvaluationError, match=r"without low-light input: \['002'\]"):
        ev.match_pairs(str(root))
    (root / 'gt' / '002.png').unlink()
    cv2.imwrite(str(root / 'gt' / '001.png'), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ev.EvaluationError, match='size mismatch for 001'):
        ev.run_table2([('identity', None)], str(root), str(out), no_lpips=True)
    with pytest.raises(ev.EvaluationError, match='low and <root>/gt'):
        ev.match_pairs(str(tmp_path))
    with pytest.raises(ev.EvaluationError, match='--lpips_backbone'):
        ev.build_lpips(None)
    with pytest.raises(ev.EvaluationError, match='--lpips_backbone'):
        ev.build_lpips(str(tmp_path / 'none.pth'))


def test_table2_lpips_from_local_backbone(tmp_path):
    import lpips
    import torchvision
    torch.manual_seed(0)
    alex = torchvision.models.alexnet()
    sd_path = tmp_path / 'alexnet_random.pth'
    torch.save(alex.state_dict(), sd_path)
    model = ev.build_lpips(str(sd_path))
    ref = lpips.LPIPS(net='alex', pretrained=True, pnet_rand=True, verbose=False)
    for seq in (ref.net.slice1, ref.net.slice2, ref.net.slice3, ref.net.slice4, ref.net.slice5):
        for idx, module in seq.named_children():
            module.load_state_dict(alex.features[int(idx)].state_dict())
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert float(model(a, b, normalize=True)) == pytest.approx(float(ref(a, b, normalize=True)), rel=1e-5)
        assert float(model(a, a, normalize=True)) == 0
    torch.save({'features.0.weight': torch.zeros(1)}, tmp_path / 'bad.pth')
    with pytest.raises(ev.EvaluationError, match='not a torchvision alex'):
        ev.build_lpips(str(tmp_path / 'bad.pth'))

    root = make_paired(tmp_path / 'set', count=1)
    out = tmp_path / 'out'
    script = load_script('eval_table2_paired')
    with pytest.raises(SystemExit, match='--lpips_backbone'):
        script.main(['--checkpoints', 'identity', '--dataroot', str(root), '--out', str(out)])
    script.main(['--checkpoints', 'identity', '--dataroot', str(root), '--out', str(out),
                 '--lpips_backbone', str(sd_path)])
    (row, ) = read_csv(out / 'table2_paired.csv')
    assert float(row['LPIPS']) > 0 and row['images'] == '1'


def test_table1_options_read_basicsr_and_bare_checkpoints(tmp_path):
    from sclle_basicsr.archs.dcenet_arch import DCENet
    state = DCENet().state_dict()
    for name, payload, key in [('bare', state, None), ('basicsr', {'params': state, 'params_ema': state}, 'params_ema'),
                               ('plain', {'params': state}, 'params')]:
        weights = tmp_path / f'{name}.pth'
        torch.save(payload, weights)
        path = ev.write_table1_options(str(tmp_path / f'{name}.yml'), name, str(weights), {'DICM': str(tmp_path)})
        options = yaml.safe_load(open(path))
        assert options['path']['param_key_g'] == key
        assert (options['val']['tile'], options['val']['tile_pad']) == (512, 8)  # tiles equal the whole image


def test_identity_scores_name_and_leave_out_images_a_metric_cannot_score(tmp_path, no_unique_weights):
    from basicsr.metrics import calculate_niqe
    folder = tmp_path / 'SET'
    folder.mkdir()
    yy, xx = np.mgrid[0:160, 0:200]
    texture = (60 + 40 * np.sin(xx / 7.0) * np.cos(yy / 11.0))[..., None] + np.random.default_rng(0).normal(
        0, 8, (160, 200, 3))
    good = np.clip(texture, 0, 255).astype(np.uint8)
    cv2.imwrite(str(folder / 'good.png'), good)
    cv2.imwrite(str(folder / 'tiny.png'), good[:40, :50])
    cv2.imwrite(str(folder / 'line.png'), good[:1, :])  # a side of one pixel: an AssertionError inside NIQE
    messages = []
    res = ev.identity_scores({'SET': str(folder)}, ('niqe', 'loe'), log=messages.append)['SET']
    assert res['left_out'] == {'niqe': 2, 'loe': 0}
    assert res['niqe'] == pytest.approx(float(calculate_niqe(good, 0)), abs=1e-9)
    for name, size in (('tiny', '50x40'), ('line', '200x1')):
        assert (f'niqe cannot score {folder / name}.png: the image is {size} pixels, under the 96x96 it needs; left '
                'out of the niqe mean.') in messages
    assert 'niqe of SET: 2 of 3 image(s) left out (cannot be scored)' in messages
    niqe = res['niqe']

    out = tmp_path / 'out'
    out.mkdir()
    rows, md = ev.run_table1([('identity', None)], str(out), sets=['SET'], dataroot=str(tmp_path), log=lambda m: None)
    assert rows[0]['SET'] == pytest.approx(niqe) and 'left out: identity SET NIQE: 2.' in md


def test_table2_leaves_out_images_a_metric_cannot_score(tmp_path):
    root = make_paired(tmp_path / 'set', count=2)
    small = cv2.imread(str(root / 'gt' / '001.png'))[:8, :9]  # SSIM needs 11x11 (NaN below)
    cv2.imwrite(str(root / 'gt' / '001.png'), small)
    cv2.imwrite(str(root / 'low' / '001.jpg'), (small * 0.3).astype(np.uint8))
    out = tmp_path / 'out'
    out.mkdir()
    messages = []
    rows, md = ev.run_table2([('identity', None)], str(root), str(out), no_lpips=True, log=messages.append)
    low, gt = cv2.imread(str(root / 'low' / '000.png')), cv2.imread(str(root / 'gt' / '000.png'))
    from basicsr.metrics import calculate_ssim
    assert rows[0]['SSIM'] == pytest.approx(calculate_ssim(low, gt, 0, test_y_channel=False), rel=1e-9)
    assert rows[0]['images'] == 2 and np.isfinite(rows[0]['PSNR'])
    assert any(re.search(r'SSIM cannot score .*001\.jpg: ValueError: the metric returned NaN', m) for m in messages)
    assert 'left out: identity SSIM: 1.' in md
    assert (out / 'table2_paired.csv').exists() and not [n for n in os.listdir(out) if 'sclle-tmp' in n]


def test_nan_weights_are_one_line_errors_not_wrong_tables(tmp_path, nan_weights):
    weights = nan_weights
    root = make_paired(tmp_path / 'set', count=1)
    with pytest.raises(SystemExit) as exc:
        load_script('eval_table2_paired').main(['--checkpoints', f'sclle={weights}', '--dataroot', str(root),
                                                '--no_lpips', '--out', str(tmp_path / 'out')])
    message = str(exc.value.code)
    # refused when the weights are read, or when the enhanced image comes out NaN: either way no table
    assert message.startswith('error: ') and str(weights) in message and '\n' not in message
    assert not (tmp_path / 'out' / 'table2_paired.csv').exists()
    from sclle_basicsr.archs.dcenet_arch import DCENet
    net = DCENet()
    net.load_state_dict(torch.load(weights))
    with pytest.raises(ev.EvaluationError, match=r'on img\.png: non-finite weights \(NaN or Inf\) in e_conv7\.bias'):
        ev.enhance(net, torch.full((1, 3, 1, 1), 0.5), 'checkpoint x on img.png')


def test_lpips_backbone_is_read_by_the_package_checkpoint_reader(tmp_path):
    import torchvision
    torch.manual_seed(0)
    alex = torchvision.models.alexnet()
    torch.save(alex.state_dict(), tmp_path / 'bare.pth')
    # a training checkpoint of a DataParallel model: unwrapped as every other checkpoint of the package
    torch.save({'state_dict': {f'module.{k}': v for k, v in alex.state_dict().items()}}, tmp_path / 'wrapped.pth')
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        scores = [float(ev.build_lpips(str(tmp_path / name))(a, b, normalize=True)) for name in ('bare.pth',
                                                                                                 'wrapped.pth')]
    assert scores[0] == scores[1] > 0
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    with pytest.raises(ev.EvaluationError, match=r'LPIPS backbone \(option --lpips_backbone\) .*notes\.pth: cannot be '
                                                 r'read as a PyTorch checkpoint') as exc:
        ev.build_lpips(str(tmp_path / 'notes.pth'))
    assert '\n' not in str(exc.value)


def test_output_brightness_of_the_input_and_of_a_brightening_network(tmp_path):
    """identity gives the input's own grey statistics; a DCE-Net whose curves brighten everything gives more."""
    from sclle_basicsr.archs.dcenet_arch import DCENet
    for name in ('A', 'B'):
        os.makedirs(tmp_path / 'sets' / name)
    dark = np.full((16, 24, 3), 40, np.uint8)
    dark[:4] = 250  # a bright band: 1/4 of the pixels above 0.9
    cv2.imwrite(str(tmp_path / 'sets' / 'A' / 'a.png'), dark)
    cv2.imwrite(str(tmp_path / 'sets' / 'B' / 'b.png'), np.full((8, 8, 3), 100, np.uint8))
    net = DCENet()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.e_conv7.bias.fill_(-5.0)  # every curve parameter tanh(-5) ~ -1: x <- 2x - x^2, the strongest brightening
    weights = tmp_path / 'bright.pth'
    torch.save(net.state_dict(), weights)
    out = tmp_path / 'out'
    load_script('eval_output_brightness').main(['--checkpoints', 'identity', f'bright={weights}', '--sets', 'A', 'B',
                                                '--dataroot', str(tmp_path / 'sets'), '--out', str(out)])
    rows = {r['method']: r for r in read_csv(out / 'output_brightness.csv')}
    ident, bright = rows['identity'], rows['bright']
    assert float(ident['A_mean']) == pytest.approx((40 * 12 + 250 * 4) / 16 / 255, abs=1e-6)
    assert float(ident['A_highlights']) == pytest.approx(0.25) and float(ident['A_p95']) == pytest.approx(250 / 255)
    assert float(ident['B_mean']) == pytest.approx(100 / 255) and float(ident['B_highlights']) == 0
    assert float(ident['average_mean']) == pytest.approx((float(ident['A_mean']) + float(ident['B_mean'])) / 2)
    assert float(bright['A_mean']) > float(ident['A_mean']) + 0.3 and float(bright['B_highlights']) == 1.0
    assert 'share of pixels above 0.9' in (out / 'output_brightness.md').read_text()
    with pytest.raises(SystemExit, match='no images in'):
        load_script('eval_output_brightness').main(['--checkpoints', 'identity', '--sets', 'C', '--dataroot',
                                                    str(tmp_path / 'sets'), '--out', str(tmp_path / 'o2')])
