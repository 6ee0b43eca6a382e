"""The released-recipe option file trains with the released optimiser: steps of SCLLLEModel built from it match
Adam with coupled weight decay after global-norm clipping, computed here by hand from the same weights and batches.

The VGG and the segmentor are swapped for random/tiny ones (the file's weights are not available offline); the loss
is not what is checked, the update is."""
import copy
import math

import torch
from basicsr.models import build_model
from conftest import TINY_SEGMENTOR_CFG
from test_options import RECIPE, load

from sclle_basicsr.archs.dcenet_arch import DCENet


def recipe_model():
    opt = json_copy(load(RECIPE))
    opt.update(is_train=True, dist=False, num_gpu=0, rank=0, world_size=1)
    opt['path'] = {'pretrain_network_g': None, 'resume_state': None}
    opt['train']['vgg_opt'] = dict(opt['train']['vgg_opt'], weights_format='random', weights_path=None)
    opt['train']['segmentor_opt'] = {'allow_random_init': True, 'cfg_options': TINY_SEGMENTOR_CFG}
    torch.manual_seed(0)
    return build_model(opt), opt


def json_copy(opt):
    return copy.deepcopy({k: (json_copy(v) if isinstance(v, dict) else v) for k, v in opt.items()})


def batch(seed, size=32):
    g = torch.Generator().manual_seed(seed)
    return {'lq': torch.rand(2, 3, size, size, generator=g) * 0.3,
            'pos': torch.rand(2, 3, size, size, generator=g),
            'neg': [torch.rand(2, 3, size, size, generator=g)],  # neg_sampling: pooled -> one negative per sample
            'label': torch.randint(0, 19, (2, size, size), generator=g)}


def reference_steps(model, initial, batches, lr, weight_decay, clip, betas=(0.9, 0.999), eps=1e-8):
    """Adam (torch's coupled L2 weight decay) on clip_grad_norm'ed gradients, written out."""
    net = DCENet(**{k: v for k, v in model.opt['network_g'].items() if k != 'type'})
    net.load_state_dict(initial)
    params = list(net.parameters())
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    for t, data in enumerate(batches, start=1):
        out, curves = net(data['lq'], return_curves=True)
        loss, _ = model.scl_losses(out, lq=data['lq'], curves=curves, pos=data['pos'], neg=data['neg'],
                                   label=data['label'])
        grads = torch.autograd.grad(loss, params)
        if clip:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            grads = [g * min(1.0, clip / (float(norm) + 1e-6)) for g in grads]
        with torch.no_grad():
            for p, g, m_i, v_i in zip(params, grads, m, v):
                g = g + weight_decay * p
                m_i.mul_(betas[0]).add_(g, alpha=1 - betas[0])
                v_i.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
                m_hat = m_i / (1 - betas[0]**t)
                v_hat = v_i / (1 - betas[1]**t)
                p.sub_(lr * m_hat / (v_hat.sqrt() + eps))
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def max_difference(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_recipe_states_the_released_optimiser():
    opt = load(RECIPE)
    train, train_set = opt['train'], opt['datasets']['train']
    assert train['optim_g'] == {'type': 'Adam', 'lr': 1e-4, 'weight_decay': 1e-4}
    assert train['grad_clip_norm'] == 0.1 and train['ema_decay'] == 0
    assert opt['network_g']['init_std'] == 0.02
    assert (train_set['crop_size'], train_set['batch_size_per_gpu'], train_set['use_hflip']) == (384, 2, True)
    assert train_set['resize_references'] is True and train_set['neg_sampling'] == 'pooled'
    assert train['vgg_opt']['weights_format'] == 'torchvision'
    assert (train['vgg_opt']['mean'], train['vgg_opt']['std']) == ([0.0] * 3, [1.0] * 3)


def test_steps_match_clipped_adam_with_weight_decay():
    model, opt = recipe_model()
    initial = {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}
    weights = [model.net_g.e_conv2.weight, model.net_g.e_conv5.weight]
    std = float(torch.cat([w.detach().flatten() for w in weights]).std())
    assert math.isclose(std, 0.02, rel_tol=0.05), 'conv weights are not drawn from N(0, 0.02)'

    batches = [batch(seed) for seed in range(3)]
    for it, data in enumerate(batches, start=1):
        model.feed_data(data)
        model.optimize_parameters(it)
    trained = {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}

    stated = dict(lr=1e-4, weight_decay=1e-4, clip=0.1)
    expected = reference_steps(model, initial, batches, **stated)
    assert max_difference(trained, expected) < 2e-8
    # the check can fail: without the clipping, or without the weight decay, the update is measurably different
    assert max_difference(trained, reference_steps(model, initial, batches, **dict(stated, clip=None))) > 1e-6
    assert max_difference(trained, reference_steps(model, initial, batches, **dict(stated, weight_decay=0))) > 1e-6
