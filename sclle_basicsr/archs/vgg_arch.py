"""Frozen VGG-16 feature extractor shared by the SCL-LLE contrastive (L_c) and feature-retention (L_fr) losses."""
import os.path as osp

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn
from torchvision.models.vgg import cfgs, make_layers

from sclle_basicsr.utils.checkpoints import CheckpointError, read_features_state_dict

# Names of the modules of torchvision's ``vgg16().features`` (index i holds ``features.i``).
VGG16_LAYER_NAMES = (
    'conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1',
    'conv2_1', 'relu2_1', 'conv2_2', 'relu2_2', 'pool2',
    'conv3_1', 'relu3_1', 'conv3_2', 'relu3_2', 'conv3_3', 'relu3_3', 'pool3',
    'conv4_1', 'relu4_1', 'conv4_2', 'relu4_2', 'conv4_3', 'relu4_3', 'pool4',
    'conv5_1', 'relu5_1', 'conv5_2', 'relu5_2', 'conv5_3', 'relu5_3', 'pool5')  # yapf: disable
LAYER_INDEX = {name: i for i, name in enumerate(VGG16_LAYER_NAMES)}

WEIGHTS_FORMATS = ('caffe_bgr', 'torchvision', 'random')
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # 0-255 scale, BGR order
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # [0, 1] scale, RGB order
IMAGENET_STD = (0.229, 0.224, 0.225)


@ARCH_REGISTRY.register()
class FrozenVGG16Features(nn.Module):
    """ImageNet VGG-16 convolutional features, frozen, returning any set of named layers in one pass.

    Layout and weight names: torchvision ``vgg16().features`` (``features.0.weight`` ... ``features.28.bias``; a
    full torchvision ``vgg16()`` state dict is accepted too, its ``features.*`` part is used).  Only the modules up
    to the deepest layer in ``layers`` are built; weights of deeper layers in the file are ignored, the ones of
    the built layers must all be present with the right shapes.

    Input: RGB in [0, 1], (N, 3, H, W).  Normalisation by ``weights_format``:

    * ``'caffe_bgr'`` (the original Oxford/Caffe weights, e.g. ``vgg16_imagenet_caffe_bgr_features.pth``):
      flip to BGR, scale to 0-255, subtract [103.939, 116.779, 123.68].
    * ``'torchvision'`` (``vgg16-397923af.pth``): ImageNet mean/std in RGB on [0, 1].
    * ``'random'``: no file, torchvision's random init; only when explicitly chosen (tests).  Same normalisation
      as ``'torchvision'``.

    ``mean`` / ``std`` ([0, 1] scale, RGB) override the normalisation of ``'torchvision'`` and ``'random'``;
    ``mean=[0, 0, 0], std=[1, 1, 1]`` feeds raw [0, 1] RGB as the released SCL-LLE training did.

    ``feature_scale`` multiplies every returned feature (not what flows on to deeper layers).  Default 1/255 for
    ``'caffe_bgr'``: Caffe features on the 0-255 input are about 255x those of [0, 1] input, which would make Gram
    distances ~255^4 larger and the paper's Gram margin (0.04, tuned on [0, 1]-scale features) meaningless;
    dividing by 255 restores the scale.  1.0 for the other formats.

    Precision: the weights are kept as stored (float32 for the released files); the input is cast to the
    parameters' dtype, so ``.double()`` gives a float64 extractor (gradcheck) and autocast applies as usual.
    Features come back in the computation dtype; the losses compute Gram matrices in at least float32.

    Frozen: parameters never require grad, and the module stays in eval mode when a parent calls ``.train()``.
    Gradients still flow to the input.
    """

    def __init__(self,
                 layers=('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3'),
                 weights_path=None,
                 weights_format='caffe_bgr',
                 feature_scale=None,
                 mean=None,
                 std=None):
        super().__init__()
        if isinstance(layers, str):
            layers = (layers, )
        layers = tuple(layers)
        if not layers:
            raise ValueError('FrozenVGG16Features needs at least one layer in `layers`')
        unknown = [name for name in layers if name not in LAYER_INDEX]
        if unknown:
            raise ValueError(f'unknown VGG-16 layer(s) {unknown}; choose among {list(VGG16_LAYER_NAMES)}')
        if weights_format not in WEIGHTS_FORMATS:
            raise ValueError(f'weights_format must be one of {WEIGHTS_FORMATS}, got {weights_format!r}')
        self.layers = layers
        self.weights_format = weights_format
        self.weights_path = weights_path
        depth = max(LAYER_INDEX[name] for name in layers) + 1
        self.features = make_layers(cfgs['D'], batch_norm=False)[:depth]
        for module in self.features:  # in-place ReLU would overwrite a returned conv feature
            if isinstance(module, nn.ReLU):
                module.inplace = False

        if weights_format == 'random':
            if weights_path is not None:
                raise ValueError(f"weights_format 'random' takes no weights_path (got {weights_path!r})")
        else:
            if weights_path is None:
                raise ValueError(f"FrozenVGG16Features: weights_format {weights_format!r} needs the option "
                                 "weights_path (a local .pth file); use weights_format 'random' only for tests")
            if not osp.isfile(weights_path):
                raise FileNotFoundError(f'FrozenVGG16Features: VGG-16 weights file {weights_path!r} (option '
                                        f'weights_path, weights_format {weights_format!r}) does not exist')
            self._load(weights_path)

        if weights_format == 'caffe_bgr':
            if mean is not None or std is not None:
                raise ValueError("mean/std overrides apply to weights_format 'torchvision' or 'random' only; "
                                 "'caffe_bgr' weights need the fixed Caffe BGR mean")
            self.register_buffer('mean', torch.tensor(CAFFE_BGR_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer('std', torch.ones(1, 3, 1, 1), persistent=False)
            self.input_scale, self.bgr = 255.0, True
        else:
            mean = IMAGENET_MEAN if mean is None else mean
            std = IMAGENET_STD if std is None else std
            if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
                raise ValueError(f'mean and std need 3 values each and std > 0, got mean={mean}, std={std}')
            self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
            self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
            self.input_scale, self.bgr = 1.0, False
        if feature_scale is None:
            feature_scale = 1.0 / 255.0 if weights_format == 'caffe_bgr' else 1.0
        self.feature_scale = float(feature_scale)

        for param in self.parameters():
            param.requires_grad_(False)
        self.eval()

    def _load(self, path):
        try:
            state = read_features_state_dict(path)
        except CheckpointError as err:  # torch's own message may run over many lines
            raise CheckpointError(f'VGG-16 weights (option weights_path) {str(err).splitlines()[0]}') from err
        own = self.features.state_dict()
        missing = [f'features.{k}' for k in own if k not in state]
        if missing:
            raise KeyError(f'VGG-16 weights file {path} (option weights_path) lacks {missing}')
        bad = [f'features.{k}: {tuple(state[k].shape)} != {tuple(v.shape)}' for k, v in own.items()
               if state[k].shape != v.shape]
        if bad:
            raise ValueError(f'VGG-16 weights file {path} (option weights_path) has wrong shapes: {bad}')
        self.features.load_state_dict({k: state[k] for k in own})

    def train(self, mode=True):
        """Stay in eval mode whatever the parent asks (frozen network)."""
        return super().train(False)

    def deepest(self, layers):
        """Index in ``features`` of the deepest of ``layers``."""
        return max(LAYER_INDEX[name] for name in layers)

    def _check_layers(self, layers):
        layers = self.layers if layers is None else ((layers, ) if isinstance(layers, str) else tuple(layers))
        unavailable = [name for name in layers if name not in LAYER_INDEX or LAYER_INDEX[name] >= len(self.features)]
        if unavailable:
            raise ValueError(f'layer(s) {unavailable} not available: this extractor was built up to '
                             f'{VGG16_LAYER_NAMES[len(self.features) - 1]} (option layers={list(self.layers)})')
        return layers

    def normalize(self, x):
        """RGB [0, 1] -> the input the weights expect (see the class docstring)."""
        if x.dim() != 4 or x.size(1) != 3:
            raise ValueError(f'FrozenVGG16Features expects an (N, 3, H, W) RGB tensor, got {tuple(x.shape)}')
        x = x.to(self.features[0].weight.dtype)
        if self.bgr:
            x = x.flip(1)
        return (x * self.input_scale - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x, layers=None):
        """Features of ``x`` for ``layers`` (default: the constructor's), as {layer name: tensor}.

        Runs the network only up to the deepest requested layer.
        """
        return self.extract_many([(x, layers)])[0]

    def extract_many(self, requests):
        """Features of several inputs in as few passes as possible: ``[(x, layers), ...] -> [dict, ...]``.

        Inputs of the same spatial size are concatenated along the batch into one pass; each input's rows leave
        that batch as soon as its own deepest layer is reached (so references that only need shallow layers do
        not pay for the deep ones).  Autograd follows the caller's grad mode.
        """
        requests = [(x, self._check_layers(layers)) for x, layers in requests]
        results = [dict() for _ in requests]
        groups = {}
        for i, (x, _) in enumerate(requests):
            groups.setdefault((tuple(x.shape[1:]), x.device), []).append(i)
        for members in groups.values():
            # deepest first, so finished inputs are always a suffix of the batch and are dropped by slicing
            members = sorted(members, key=lambda i: -self.deepest(requests[i][1]))
            sizes = [requests[i][0].size(0) for i in members]
            starts = [sum(sizes[:k]) for k in range(len(sizes))]
            x = torch.cat([requests[i][0] for i in members]) if len(members) > 1 else requests[members[0]][0]
            h = self.normalize(x)
            active = len(members)
            for idx in range(self.deepest(requests[members[0]][1]) + 1):
                h = self.features[idx](h)
                name = VGG16_LAYER_NAMES[idx]
                for k in range(active):
                    i = members[k]
                    if name in requests[i][1]:
                        feat = h[starts[k]:starts[k] + sizes[k]] if len(members) > 1 else h
                        results[i][name] = feat * self.feature_scale if self.feature_scale != 1.0 else feat
                while active and self.deepest(requests[members[active - 1]][1]) == idx:
                    active -= 1
                if active == 0:
                    break
                if active < len(members):
                    h = h[:starts[active - 1] + sizes[active - 1]]
        return results

    def extra_repr(self):
        return (f'layers={list(self.layers)}, weights_format={self.weights_format!r}, '
                f'weights_path={self.weights_path!r}, feature_scale={self.feature_scale:g}')
