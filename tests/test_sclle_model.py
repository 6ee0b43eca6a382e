"""SCLLLEModel's checkpoint loading: each wrong checkpoint is an error naming the file and the option to set."""
import pytest
import torch
from basicsr.models import build_model

from sclle_basicsr.archs.dcenet_arch import DCENet


def build(weights, param_key='params', **network):
    opt = {'model_type': 'SCLLLEModel', 'is_train': False, 'dist': False, 'num_gpu': 0,
           'network_g': {'type': 'DCENet', **network},
           'path': {'pretrain_network_g': str(weights), 'param_key_g': param_key, 'strict_load_g': True}}
    return build_model(opt)


def test_missing_checkpoint_names_path_and_option(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth .*path.pretrain_network_g'):
        build(tmp_path / 'nope.pth')


def test_bare_state_dict_without_param_key_names_the_fix(tmp_path):
    torch.save(DCENet().state_dict(), tmp_path / 'bare.pth')
    with pytest.raises(KeyError, match='param_key_g: ~'):
        build(tmp_path / 'bare.pth')
    model = build(tmp_path / 'bare.pth', param_key=None)
    assert isinstance(model.net_g, DCENet)


def test_checkpoint_of_another_width_names_the_network_options(tmp_path):
    torch.save({'params': DCENet(num_features=16).state_dict()}, tmp_path / 'narrow.pth')
    with pytest.raises(RuntimeError, match=r"narrow.pth does not fit DCENet .*'num_features': 32"):
        build(tmp_path / 'narrow.pth', num_features=32)
    build(tmp_path / 'narrow.pth', num_features=16)
