"""Each SCL-LLE loss term as a function of the output's brightness: which terms hold the brightness, and where.

The output is the low-light input through a gamma curve, ``x ** (1 / g)``, for a range of ``g``: one monotone
brightening whose mean brightness runs from the input's to nearly white.  For each term (the Gram and the mean
hinges of L_c against under- and over-exposed negatives, L_fr, the colour term) the sweep records its value on the
same inputs, positives and negatives.  A term that still falls at white pushes every output towards white; a
term that rises holds the brightness.  Used to explain the "without over-exposed negatives" row of Table 3
(docs/reproduction.md).
"""
import json

import numpy as np
import torch

from sclle_basicsr.utils.atomic_files import write_atomic
from sclle_basicsr.utils.image_files import list_images

GAINS = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.0, 10.0, 15.0, 25.0)


def random_crops(folder, count, size, rng):
    """``count`` RGB [0, 1] crops of ``size``² from images of ``folder`` (short sides resized up when smaller)."""
    import cv2
    paths = list_images(folder)
    if not paths:
        raise ValueError(f'no images in {folder}')
    crops = []
    for index in rng.choice(len(paths), count, replace=count > len(paths)):
        img = cv2.imread(paths[index], cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'cannot read {paths[index]}')
        h, w = img.shape[:2]
        if min(h, w) < size:
            scale = size / min(h, w)
            img = cv2.resize(img, (max(size, round(w * scale)), max(size, round(h * scale))))
            h, w = img.shape[:2]
        top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        crop = img[top:top + size, left:left + size, ::-1].astype(np.float32) / 255
        crops.append(torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1))
    return torch.stack(crops)


def term_losses(vgg):
    """The terms, each a loss module sharing ``vgg``: name -> (module, which negatives it sees)."""
    from sclle_basicsr.losses.contrastive_loss import SCLContrastiveLoss
    from sclle_basicsr.losses.feature_retention_loss import FeatureRetentionLoss
    terms = {}
    for kind in ('under', 'over'):
        terms[f'L_c Gram vs {kind}'] = (SCLContrastiveLoss(gram_weight=5.0, mean_weight=0.0), kind)
        terms[f'L_c mean vs {kind}'] = (SCLContrastiveLoss(gram_weight=0.0, mean_weight=10.0), kind)
    terms['L_fr'] = (FeatureRetentionLoss(), None)
    for loss, _ in terms.values():
        loss.attach_extractor(vgg)
    return terms


def sweep(vgg, lq, pos, under, over, gains=GAINS, enhancers=()):
    """``{'brightness': [...], term: [...], 'enhancers': {name: brightness}}`` over ``gains``.

    ``enhancers``: ``(name, network)`` pairs whose mean output brightness on ``lq`` is recorded, to place trained
    weights on the same axis.
    """
    from sclle_basicsr.losses.color_constancy_loss import ColorConstancyLoss
    terms = term_losses(vgg)
    colour = ColorConstancyLoss(smooth_weight=0.0)
    negatives = {'under': under, 'over': over}
    result = {'gain': list(gains), 'brightness': [], 'L_cc colour': []}
    result.update({name: [] for name in terms})
    with torch.no_grad():
        for gain in gains:
            out = lq.clamp(0, 1)**(1.0 / gain)
            result['brightness'].append(float(out.mean()))
            result['L_cc colour'].append(float(colour(out)))
            for name, (loss, kind) in terms.items():
                value = loss(out, lq) if kind is None else loss(out, pos, negative=[negatives[kind]])
                result[name].append(float(value))
        result['enhancers'] = {name: float(net(lq).clamp(0, 1).mean()) for name, net in enhancers}
    return result


def plot_sweep(result, path, fr_weights=(1.0, 100.0)):
    """Left: every term against brightness.  Right: the sums L_c would minimise with both kinds of negatives
    (averaged, as the loss does) and with under-exposed ones only, plus L_fr at ``fr_weights``."""
    import io

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    b = np.array(result['brightness'])
    series = {k: np.array(v) for k, v in result.items() if k not in ('gain', 'brightness', 'enhancers')}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, values in series.items():
        left.plot(b, values, marker='.', label=name)
    left.set_title('each term')
    both = (series['L_c Gram vs under'] + series['L_c Gram vs over'] + series['L_c mean vs under'] +
            series['L_c mean vs over']) / 2
    under_only = series['L_c Gram vs under'] + series['L_c mean vs under']
    for weight in fr_weights:
        extra = weight * series['L_fr'] + series['L_cc colour']
        right.plot(b, both + extra, marker='.', label=f'both negatives, L_fr x{weight:g}')
        right.plot(b, under_only + extra, marker='.', linestyle='--', label=f'under-exposed only, L_fr x{weight:g}')
    right.set_title('what training minimises (L_c + L_fr + colour)')
    for ax in (left, right):
        low, high = ax.get_ylim()
        for k, (name, value) in enumerate(sorted(result.get('enhancers', {}).items(), key=lambda item: item[1])):
            ax.axvline(value, color='grey', linewidth=0.8)
            ax.text(value, high - (k % 3) * (high - low) / 12, name, fontsize=7, va='top', ha='left')
        ax.set_xlabel('mean output brightness (input through x^(1/g))')
        ax.legend(fontsize=7)
    fig.tight_layout()
    picture = io.BytesIO()
    fig.savefig(picture, format='png', dpi=100)
    plt.close(fig)
    write_atomic(path, picture.getvalue())


def write_sweep(result, json_path):
    write_atomic(json_path, json.dumps(result, indent=1))
