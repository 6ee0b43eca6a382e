"""DCENet: shapes, released checkpoints, the curve iteration, subnormal flushing."""
import pytest
import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from conftest import require_asset

from sclle_basicsr.archs.dcenet_arch import DCENet, flush_subnormals_

RELEASED = ['sclle_official.pth', 'zerodce_official.pth']


def reference_forward(state, x):
    """The published network written out by hand (Zero-DCE's enhance_net_nopool), from a state_dict."""

    def conv(name, inp):
        return F.conv2d(inp, state[f'{name}.weight'], state[f'{name}.bias'], padding=1)

    x1 = F.relu(conv('e_conv1', x))
    x2 = F.relu(conv('e_conv2', x1))
    x3 = F.relu(conv('e_conv3', x2))
    x4 = F.relu(conv('e_conv4', x3))
    x5 = F.relu(conv('e_conv5', torch.cat([x3, x4], 1)))
    x6 = F.relu(conv('e_conv6', torch.cat([x2, x5], 1)))
    x_r = torch.tanh(conv('e_conv7', torch.cat([x1, x6], 1)))
    r = torch.split(x_r, 3, dim=1)
    out = x
    for n in range(8):
        out = out + r[n] * (torch.pow(out, 2) - out)
    return out, x_r


@pytest.mark.parametrize('shape', [(1, 3, 17, 23), (3, 3, 5, 9), (2, 3, 32, 1), (1, 3, 1, 1)])
def test_output_keeps_any_size_and_batch(shape):
    net = DCENet()
    x = torch.rand(shape)
    enhanced, curves = net(x, return_curves=True)
    assert enhanced.shape == x.shape
    assert curves.shape == (shape[0], 24, *shape[2:])
    assert torch.equal(net(x), enhanced)


def test_built_from_registry_with_options():
    net = build_network({'type': 'DCENet', 'num_iterations': 4, 'num_features': 16})
    _, curves = net(torch.rand(1, 3, 8, 8), return_curves=True)
    assert curves.shape[1] == 12
    assert net.e_conv2.weight.shape == (16, 16, 3, 3)


def test_rejects_non_rgb_input():
    with pytest.raises(ValueError, match='RGB'):
        DCENet()(torch.rand(1, 1, 8, 8))


def test_curve_iteration_matches_direct_computation():
    torch.manual_seed(0)
    net = DCENet()
    x = torch.rand(2, 3, 19, 13)
    enhanced, curves = net(x, return_curves=True)
    expected, expected_curves = reference_forward(net.state_dict(), x)
    torch.testing.assert_close(curves, expected_curves, rtol=0, atol=1e-6)
    torch.testing.assert_close(enhanced, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize('name', RELEASED)
def test_released_checkpoint_loads_strictly_and_matches_reference(name):
    path = require_asset('weights', name)
    state = torch.load(path, map_location='cpu')
    net = DCENet()
    net.load_state_dict(state, strict=True)
    x = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, _ = reference_forward(state, x)  # raw weights, subnormals kept
        torch.testing.assert_close(net(x), expected, rtol=0, atol=1e-5)


def test_subnormals_are_flushed_when_weights_load():
    net = DCENet()
    state = net.state_dict()
    tiny = torch.finfo(torch.float32).tiny
    state['e_conv3.weight'].view(-1)[:10] = tiny / 4  # subnormal
    state['e_conv3.weight'].view(-1)[10] = -tiny / 8
    state['e_conv3.weight'].view(-1)[11] = tiny  # smallest normal: kept
    net.load_state_dict(state)
    weight = net.e_conv3.weight.view(-1)
    assert torch.count_nonzero(weight[:11]) == 0
    assert weight[11] == tiny
    assert all(int(((p != 0) & (p.abs() < tiny)).sum()) == 0 for p in net.parameters())


def test_flush_subnormals_counts_and_ignores_integers():
    t = torch.tensor([1e-40, -1e-41, 0.0, 1.0, 1e-30])
    assert flush_subnormals_(t) == 2
    assert t.tolist() == [0.0, 0.0, 0.0, 1.0, pytest.approx(1e-30)]
    assert flush_subnormals_(torch.tensor([1, 2])) == 0


def test_released_sclle_checkpoint_has_subnormals_and_loads_without():
    state = torch.load(require_asset('weights', 'sclle_official.pth'), map_location='cpu')
    tiny = torch.finfo(torch.float32).tiny
    in_file = sum(int(((v != 0) & (v.abs() < tiny)).sum()) for v in state.values())
    assert in_file > 30000  # about half of the 79,416 parameters
    net = DCENet()
    net.load_state_dict(state)
    assert sum(int(((p != 0) & (p.abs() < tiny)).sum()) for p in net.parameters()) == 0


def test_init_std_draws_conv_weights_from_a_normal():
    torch.manual_seed(0)
    net = DCENet(init_std=0.02)
    weights = torch.cat([m.weight.flatten() for m in net.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.001 and abs(weights.mean().item()) < 0.001
