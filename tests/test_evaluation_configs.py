"""Any BasicSR network in Tables 1, 2 and 4 and the comparison sheet (``--configs NAME=OPTIONS.yml``): a stock arch
(SRVGGNetCompact), an arch of the user's (``--imports``), beside DCE-Net checkpoints; and the one-line errors of a
bad option file."""
import csv
import os
import os.path as osp
import sys
import textwrap

import cv2
import numpy as np
import pytest
import torch
import yaml
from conftest import load_script

from sclle_basicsr import evaluation as ev
from sclle_basicsr.archs.dcenet_arch import DCENet
from sclle_basicsr.utils.assets import REPO_ROOT

# isort: split
from basicsr.archs.srvgg_arch import SRVGGNetCompact
from basicsr.metrics import calculate_niqe, calculate_psnr

SRVGG = {'type': 'SRVGGNetCompact', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 8, 'num_conv': 2, 'upscale': 1,
         'act_type': 'prelu'}


def read_csv(path):
    with open(path) as f:
        return {row['method']: row for row in csv.DictReader(f)}


def srvgg(seed=0, passthrough=False, **kwargs):
    """A random SRVGGNetCompact; ``passthrough``: its last convolution zeroed, so that it returns its input (the
    arch adds the nearest-upsampled input to the last convolution's output)."""
    torch.manual_seed(seed)
    net = SRVGGNetCompact(**{k: v for k, v in dict(SRVGG, **kwargs).items() if k != 'type'})
    if passthrough:
        with torch.no_grad():
            net.body[-1].weight.zero_()
            net.body[-1].bias.zero_()
    return net.eval()


def write_options(path, network_g, pretrain, param_key='params', **extra):
    """A BasicSR test option file; the sections besides network_g and path are ones the evaluation ignores."""
    opt = {'name': 'ignored', 'model_type': 'NoSuchModel', 'scale': 4,
           'datasets': {'test_1': {'name': 'nowhere', 'type': 'NoSuchDataset', 'dataroot_lq': '/nonexistent'}},
           'network_g': network_g,
           'path': {'pretrain_network_g': pretrain, 'param_key_g': param_key, 'strict_load_g': True},
           'val': {'metrics': {'psnr': {'type': 'calculate_psnr'}}}}
    opt.update(extra)
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return str(path)


def textured(h, w, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = (60 + 40 * np.sin(xx / 7.0) * np.cos(yy / 11.0))[..., None] + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_paired(root, count=2, size=(40, 56)):
    (root / 'low').mkdir(parents=True)
    (root / 'gt').mkdir()
    for i in range(count):
        gt = textured(*size, seed=i)
        cv2.imwrite(str(root / 'gt' / f'{i:03d}.png'), gt)
        cv2.imwrite(str(root / 'low' / f'{i:03d}.png'), (gt.astype(np.float32) ** 2 / 255 * 0.6).astype(np.uint8))
    return str(root)


@pytest.fixture
def nets(tmp_path):
    """Option files of a random SRVGGNetCompact (BasicSR checkpoint: params_ema and params) and of a pass-through
    one (bare state dict, ``param_key_g: ~``), and a DCE-Net checkpoint."""
    random_net, other = srvgg(0), srvgg(1)
    torch.save({'params': other.state_dict(), 'params_ema': random_net.state_dict()}, tmp_path / 'srvgg.pth')
    torch.save(srvgg(2, passthrough=True).state_dict(), tmp_path / 'pass.pth')
    torch.manual_seed(0)
    torch.save(DCENet().state_dict(), tmp_path / 'dce.pth')
    return {'random': write_options(tmp_path / 'srvgg.yml', SRVGG, str(tmp_path / 'srvgg.pth'), 'params_ema'),
            'random_net': random_net,
            # relative to the repository root, as in the repository's own option files
            'pass': write_options(tmp_path / 'pass.yml', SRVGG, osp.relpath(tmp_path / 'pass.pth', REPO_ROOT), None),
            'dce': str(tmp_path / 'dce.pth')}


# ----------------------------------------------------------------------------------------------------------------
# Table 2


def test_table2_scores_a_stock_basicsr_network_as_basicsr_loads_it(tmp_path, nets):
    root = make_paired(tmp_path / 'set')
    out = tmp_path / 'out'
    load_script('eval_table2_paired').main(['--checkpoints', 'identity', f'dce={nets["dce"]}', '--configs',
                                            f'esr={nets["random"]}', f'pass={nets["pass"]}', '--dataroot', root,
                                            '--no_lpips', '--out', str(out)])
    rows = read_csv(out / 'table2_paired.csv')
    assert list(rows) == ['identity', 'dce', 'esr', 'pass']
    # a network returning its input scores exactly as the input itself
    assert rows['pass']['PSNR'] == rows['identity']['PSNR'] and rows['pass']['SSIM'] == rows['identity']['SSIM']
    # the random network: its params_ema (param_key_g), run on the RGB [0, 1] image, rounded to 8 bits, scored
    expected = []
    for _, low_path, gt_path in ev.match_pairs(root):
        with torch.no_grad():
            y = nets['random_net'](ev.bgr_uint8_to_tensor(cv2.imread(low_path)))
        expected.append(calculate_psnr(ev.tensor_to_uint8_bgr(y), cv2.imread(gt_path), 0, test_y_channel=False))
    assert np.isfinite(float(rows['esr']['PSNR']))
    assert float(rows['esr']['PSNR']) == pytest.approx(np.mean(expected), abs=1e-9)
    assert float(rows['esr']['PSNR']) != float(rows['identity']['PSNR'])
    md = (out / 'table2_paired.md').read_text()
    assert f'esr: {nets["random"]}' in md and '| pass |' in md


def test_param_key_falls_back_to_params_as_in_basicsr(tmp_path):
    net = srvgg(3)
    torch.save({'params': net.state_dict()}, tmp_path / 'w.pth')
    path = write_options(tmp_path / 'o.yml', SRVGG, str(tmp_path / 'w.pth'), 'params_ema')
    (_, config), = ev.parse_methods([], [f'a={path}'])
    loaded = ev.load_method(config)
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert config.param_key == 'params_ema' and config.options_file == path


def test_table2_refuses_a_network_changing_the_image_size(tmp_path):
    torch.save({'params': srvgg(0, upscale=2).state_dict()}, tmp_path / 'x2.pth')
    path = write_options(tmp_path / 'x2.yml', dict(SRVGG, upscale=2), str(tmp_path / 'x2.pth'))
    root = make_paired(tmp_path / 'set', count=1)
    with pytest.raises(SystemExit) as exc:
        load_script('eval_table2_paired').main(['--configs', f'x2={path}', '--dataroot', root, '--no_lpips',
                                                '--out', str(tmp_path / 'out')])
    message = str(exc.value.code)
    assert message.startswith(f'error: options file {path} (--configs x2={path}): the network returns (1, 3, 80, 112)')
    assert 'needs the input size (option network_g)' in message and '\n' not in message
    assert not (tmp_path / 'out' / 'table2_paired.csv').exists()


def bad_option_files(tmp_path):
    """``(option file, expected message after "options file <file> (--configs bad=<file>)")``."""
    good = tmp_path / 'w.pth'
    torch.save({'params': srvgg(0).state_dict()}, good)
    bare = tmp_path / 'bare.pth'
    torch.save(srvgg(0).state_dict(), bare)
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    (tmp_path / 'broken.yml').write_text('network_g: {type: SRVGGNetCompact\n')
    (tmp_path / 'list.yml').write_text('- network_g\n')
    cases = [
        (tmp_path / 'none.yml', ' not found'),
        (tmp_path / 'broken.yml', ' cannot be read as YAML: '),
        (tmp_path / 'list.yml', ' is not a mapping of BasicSR options'),
        (write_options(tmp_path / 'no_net.yml', None, str(good)), ': no network_g'),
        (write_options(tmp_path / 'arch.yml', {'type': 'NoSuchArch'}, str(good)),
         ": network_g.type 'NoSuchArch' is not a registered BasicSR arch"),
        (write_options(tmp_path / 'kwargs.yml', dict(SRVGG, num_blocks=3), str(good)),
         ': network_g cannot be built: TypeError: '),
        (write_options(tmp_path / 'no_pretrain.yml', SRVGG, None), ': path.pretrain_network_g (the network weights) '
                                                                   'is not set'),
        (write_options(tmp_path / 'missing.yml', SRVGG, str(tmp_path / 'nope.pth')),
         f', option path.pretrain_network_g: model file {tmp_path / "nope.pth"} not found'),
        (write_options(tmp_path / 'unreadable.yml', SRVGG, str(tmp_path / 'notes.pth')),
         f', option path.pretrain_network_g: {tmp_path / "notes.pth"}: cannot be read as a PyTorch checkpoint'),
        (write_options(tmp_path / 'key.yml', SRVGG, str(bare), 'params_ema'),
         f': {bare} has no "params_ema" or "params" entry (option path.param_key_g'),
        (write_options(tmp_path / 'shape.yml', dict(SRVGG, num_feat=16), str(good)),
         f': {good} (path.pretrain_network_g) does not fit network_g SRVGGNetCompact: '),
    ]
    return [(str(path), expected) for path, expected in cases]


def test_bad_option_files_are_one_line_errors_naming_file_and_option(tmp_path):
    cases = bad_option_files(tmp_path)
    for path, expected in cases:
        with pytest.raises(ev.EvaluationError) as exc:
            ev.parse_methods(['identity'], [f'bad={path}'])
        message = str(exc.value)
        assert message.startswith(f'options file {path} (--configs bad={path})' + expected), message
        assert '\n' not in message
    path = cases[-1][0]
    for script, extra in (('eval_table1_niqe', []), ('eval_table2_paired', ['--dataroot', str(tmp_path)])):
        with pytest.raises(SystemExit) as exc:
            load_script(script).main(['--configs', f'bad={path}', '--out', str(tmp_path / 'out')] + extra)
        assert str(exc.value.code).startswith(f'error: options file {path}') and '\n' not in str(exc.value.code)
    assert not (tmp_path / 'out').exists()


def test_names_are_checked_across_checkpoints_and_configs(nets):
    with pytest.raises(ev.EvaluationError, match="method name 'a' given twice"):
        ev.parse_methods([f'a={nets["dce"]}'], [f'a={nets["random"]}'])
    for spec, expected in ((nets['random'], 'expected name=options.yml'), (f'identity={nets["random"]}', 'reserved'),
                           (f'a b={nets["random"]}', 'use letters, digits')):
        with pytest.raises(ev.EvaluationError, match=expected):
            ev.parse_methods([], [spec])
    with pytest.raises(ev.EvaluationError, match=r'no checkpoints given .*or --configs name=options\.yml'):
        ev.parse_methods([], [])


# ----------------------------------------------------------------------------------------------------------------
# Table 1


@pytest.fixture
def lle_sets(tmp_path):
    """A dataroot with one set of one textured image (NIQE needs at least two 96x96 blocks)."""
    folder = tmp_path / 'sets' / 'SET'
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / 'a.png'), textured(160, 200, seed=0))
    return str(tmp_path / 'sets')


def test_table1_scores_a_stock_basicsr_network_through_the_runner(tmp_path, nets, lle_sets, no_unique_weights):
    out = tmp_path / 'out'
    load_script('eval_table1_niqe').main(['--checkpoints', 'identity', f'dce={nets["dce"]}', '--configs',
                                          f'pass={nets["pass"]}', '--sets', 'SET', '--dataroot', lle_sets,
                                          '--out', str(out)])
    rows = read_csv(out / 'table1_niqe.csv')
    assert list(rows) == ['identity', 'dce', 'pass']
    image = cv2.imread(osp.join(lle_sets, 'SET', 'a.png'))
    assert float(rows['identity']['SET']) == pytest.approx(calculate_niqe(image, 0), abs=1e-9)
    assert np.isfinite(float(rows['dce']['SET'])) and float(rows['dce']['SET']) != float(rows['identity']['SET'])
    # the runner (4 decimals in its log) on a network returning its input: the NIQE of the input
    assert float(rows['pass']['SET']) == pytest.approx(float(rows['identity']['SET']), abs=5.1e-5)
    assert float(rows['pass']['SET_s']) > 0
    with open(out / 'options' / 'test_pass.yml') as f:
        opt = yaml.safe_load(f)
    # network_g and path from the option file, the rest generated: its datasets, model, metrics are not used
    assert opt['network_g'] == SRVGG and opt['model_type'] == 'SCLLLEModel' and opt['val']['backend'] == 'torch'
    assert opt['path'] == {'pretrain_network_g': str(tmp_path / 'pass.pth'), 'param_key_g': None,
                           'strict_load_g': True}
    assert [d['dataroot_lq'] for d in opt['datasets'].values()] == [osp.join(lle_sets, 'SET')]
    assert list(opt['val']['metrics']) == ['niqe', 'loe'] and opt['scale'] == 1  # no UNIQUE weights to be found
    with open(out / 'options' / 'test_dce.yml') as f:
        dce = yaml.safe_load(f)
    assert dce['network_g'] == {'type': 'DCENet', 'num_iterations': 8, 'num_features': 32}
    assert 'backend' not in dce['val'] and dce['path']['param_key_g'] is None


def test_table1_unique_and_loe_columns(tmp_path, nets, lle_sets, unique_network, no_unique_weights):
    """With UNIQUE weights every metric is scored for the input and each network; a network returning its input
    gets the input's UNIQUE and an LOE of 0, as the input itself."""
    weights = unique_network[1]
    out = tmp_path / 'out'
    load_script('eval_table1_niqe').main(['--checkpoints', 'identity', f'dce={nets["dce"]}', '--configs',
                                          f'pass={nets["pass"]}', '--sets', 'SET', '--dataroot', lle_sets,
                                          '--unique_weights', weights, '--out', str(out)])
    rows = read_csv(out / 'table1_niqe.csv')
    image = cv2.imread(osp.join(lle_sets, 'SET', 'a.png'))
    from sclle_basicsr.metrics import calculate_unique
    assert float(rows['identity']['SET_UNIQUE']) == pytest.approx(calculate_unique(image, weights=weights), abs=1e-9)
    assert float(rows['pass']['SET_UNIQUE']) == pytest.approx(float(rows['identity']['SET_UNIQUE']), abs=5.1e-5)
    assert float(rows['identity']['SET_LOE']) == 0 and float(rows['pass']['SET_LOE']) == 0
    assert float(rows['dce']['SET_LOE']) > 0 and float(rows['dce']['SET_UNIQUE']) != float(rows['pass']['SET_UNIQUE'])
    assert rows['dce']['UNIQUE_average'] == rows['dce']['SET_UNIQUE']
    with open(out / 'options' / 'test_dce.yml') as f:
        assert yaml.safe_load(f)['val']['metrics']['unique'] == {'type': 'calculate_unique', 'weights': weights}
    md = (out / 'table1_niqe.md').read_text()
    assert f'UNIQUE (higher is better; Zhang et al., TIP 2021): weights {weights}' in md


def test_table1_without_unique_weights_computes_the_rest(tmp_path, nets, lle_sets, no_unique_weights, capsys):
    script = load_script('eval_table1_niqe')
    missing = tmp_path / 'none' / 'UNIQUE.pt'
    with pytest.raises(SystemExit) as exc:  # weights asked for and missing: an error before any output
        script.main(['--checkpoints', 'identity', '--sets', 'SET', '--dataroot', lle_sets, '--unique_weights',
                     str(missing), '--out', str(tmp_path / 'o1')])
    assert str(exc.value.code).startswith(f'error: --unique_weights: UNIQUE weights not found: {missing}')
    assert '\n' not in str(exc.value.code) and not (tmp_path / 'o1').exists()
    out = tmp_path / 'out'
    script.main(['--checkpoints', 'identity', f'dce={nets["dce"]}', '--sets', 'SET', '--dataroot', lle_sets,
                 '--out', str(out)])
    rows = read_csv(out / 'table1_niqe.csv')
    assert rows['dce']['SET_UNIQUE'] == '' and rows['dce']['UNIQUE_average'] == ''
    assert np.isfinite(float(rows['dce']['SET'])) and float(rows['dce']['SET_LOE']) > 0
    md = (out / 'table1_niqe.md').read_text()
    assert '| dce | ' in md
    assert f'UNIQUE: unavailable, not computed: UNIQUE weights not found: {no_unique_weights}' in md
    assert 'UNIQUE unavailable (the other metrics are computed)' in capsys.readouterr().out
    script.main(['--checkpoints', 'identity', '--sets', 'SET', '--dataroot', lle_sets, '--metrics', 'loe',
                 '--out', str(tmp_path / 'o3')])
    assert list(read_csv(tmp_path / 'o3' / 'table1_niqe.csv')['identity']) == ['method', 'SET', 'average', 'SET_LOE',
                                                                              'LOE_average', 'SET_s']


USER_ARCH = textwrap.dedent("""
    import torch
    from torch import nn
    from basicsr.utils.registry import ARCH_REGISTRY


    @ARCH_REGISTRY.register()
    class SclleEvalTestGainNet(nn.Module):
        def __init__(self, gain=1.0):
            super().__init__()
            self.gain = nn.Parameter(torch.tensor(float(gain)))

        def forward(self, x):
            return (x * self.gain).clamp(0, 1)
""")


def test_table1_and_2_score_an_arch_of_the_users_own_with_imports(tmp_path, lle_sets, monkeypatch,
                                                                  no_unique_weights):
    (tmp_path / 'sclle_eval_test_archs.py').write_text(USER_ARCH)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv('PYTHONPATH', os.pathsep.join([str(tmp_path), os.environ.get('PYTHONPATH', '')]))
    torch.save({'params': {'gain': torch.tensor(1.6)}}, tmp_path / 'gain.pth')
    path = write_options(tmp_path / 'gain.yml', {'type': 'SclleEvalTestGainNet'}, str(tmp_path / 'gain.pth'))
    script = load_script('eval_table1_niqe')
    assert 'sclle_eval_test_archs' not in sys.modules
    with pytest.raises(SystemExit, match='is not a registered BasicSR arch .*--imports'):
        script.main(['--configs', f'gain={path}', '--sets', 'SET', '--dataroot', lle_sets, '--out',
                     str(tmp_path / 'o')])
    out = tmp_path / 'out'
    script.main(['--checkpoints', 'identity', '--configs', f'gain={path}', '--imports', 'sclle_eval_test_archs',
                 '--sets', 'SET', '--dataroot', lle_sets, '--out', str(out)])
    rows = read_csv(out / 'table1_niqe.csv')
    assert np.isfinite(float(rows['gain']['SET'])) and rows['gain']['SET'] != rows['identity']['SET']
    root = make_paired(tmp_path / 'paired', count=1)
    rows, _ = ev.run_table2(ev.parse_methods(['identity'], [f'gain={path}']), root, str(tmp_path), no_lpips=True,
                            log=lambda msg: None)
    low, gt = (cv2.imread(p) for p in ev.match_pairs(root)[0][1:])
    brighter = np.clip(np.round(low.astype(np.float64) * 1.6), 0, 255).astype(np.uint8)
    assert rows[1]['PSNR'] == pytest.approx(calculate_psnr(brighter, gt, 0), abs=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# Table 4 and the comparison sheet


def test_table4_segments_the_output_of_any_basicsr_network(tmp_path, nets):
    import json

    from conftest import TINY_SEGMENTOR_CFG, require_asset
    root = require_asset('cityscapes_mini')
    seg = ['--seg_random_init', '--seg_cfg_options',
           json.dumps({**TINY_SEGMENTOR_CFG, 'model.decode_head.num_classes': 19})]
    script = load_script('eval_table4_segmentation')
    out = tmp_path / 'out'
    script.main(['--checkpoints', 'identity', '--configs', f'pass={nets["pass"]}', f'esr={nets["random"]}',
                 '--dataroot', root, '--gammas', '1', '6', '--max_side', '64', '--max_images', '2', '--out', str(out)]
                + seg)
    rows = read_csv(out / 'table4_segmentation.csv')
    assert list(rows) == ['identity', 'pass', 'esr']
    for g in ('gamma=1', 'gamma=6'):  # a network returning its input segments as the input itself
        assert rows['pass'][g] == rows['identity'][g] and 0 <= float(rows['esr'][g]) <= 100
    assert f'esr: {nets["random"]}' in (out / 'table4_segmentation.md').read_text()
    torch.save({'params': srvgg(0, upscale=2).state_dict()}, tmp_path / 'x2.pth')
    x2 = write_options(tmp_path / 'x2.yml', dict(SRVGG, upscale=2), str(tmp_path / 'x2.pth'))
    with pytest.raises(SystemExit) as exc:
        script.main(['--configs', f'x2={x2}', '--dataroot', root, '--gammas', '2', '--max_side', '64',
                     '--max_images', '1', '--out', str(tmp_path / 'o2')] + seg)
    assert 'needs the input size (option network_g)' in str(exc.value.code) and '\n' not in str(exc.value.code)


def test_the_comparison_sheet_draws_any_configured_network(tmp_path, nets):
    torch.save({'params': srvgg(0, upscale=2).state_dict()}, tmp_path / 'x2.pth')
    x2 = write_options(tmp_path / 'x2.yml', dict(SRVGG, upscale=2), str(tmp_path / 'x2.pth'))
    image = tmp_path / 'img.png'
    cv2.imwrite(str(image), textured(40, 60, seed=3))
    out = tmp_path / 'sheet.png'
    load_script('compare_sheet').main(['--images', str(image), '--checkpoints', f'dce={nets["dce"]}', '--configs',
                                       f'pass={nets["pass"]}', f'x2={x2}', '--out', str(out), '--height', '40'])
    sheet = cv2.imread(str(out))
    assert sheet.shape == (40, 4 * 60, 3)  # input | dce | pass | x2 (80x120, scaled to the row height)
    tiles = [sheet[:, 60 * i:60 * (i + 1)].astype(int) for i in range(4)]
    below_caption = slice(26, 40)  # the captions differ; the pixels under them are the networks' outputs
    assert np.array_equal(tiles[2][below_caption], tiles[0][below_caption])  # pass-through: the input itself
    assert not np.array_equal(tiles[1][below_caption], tiles[0][below_caption])
    assert not np.array_equal(tiles[3][below_caption], tiles[0][below_caption])
    with pytest.raises(SystemExit, match='no checkpoints given'):
        load_script('compare_sheet').main(['--images', str(image), '--out', str(tmp_path / 'none.png')])

