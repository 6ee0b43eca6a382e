"""Temporal smoothing of enhanced video frames: each frame's mean brightness is pulled towards an exponential moving
average of the previous frames' by one global gain, so that exposure flicker left in the enhanced video (a lamp's
beat, auto-exposure pumping) is damped without blurring motion.

The per-pixel curve maps are not what is smoothed: the curve of a brighter frame is the weaker one, so it already
damps exposure changes (docs/video.md measures this), and averaging curves over time would undo that damping."""
import math

import torch

from sclle_basicsr.inference.enhancer import LUMA_BT601

# A change of mean brightness by more than this factor from one frame to the next is taken as a scene cut: the
# average restarts there instead of dragging the old scene's brightness into the new one.
SCENE_CUT_RATIO = 1.5


class BrightnessSmoother:
    """``smoother(frames)`` for consecutive batches of one video ((N, 3, H, W) floats in [0, 1], in time order).

    ``alpha`` in [0, 1): the weight of the past in the average (0: frames untouched, 0.8: a time constant of about
    five frames).  Each frame is multiplied by ``average / its mean`` and clipped to [0, 1].
    """

    def __init__(self, alpha):
        if not 0 <= alpha < 1:
            raise ValueError(f'the temporal smoothing alpha must lie in [0, 1), got {alpha}')
        self.alpha = alpha
        self.average = None

    def __call__(self, frames):
        if self.alpha == 0:
            return frames
        weights = torch.tensor(LUMA_BT601, dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
        means = (frames * weights).sum(1).mean((1, 2)).tolist()
        gains = []
        for mean in means:
            mean = max(mean, 1e-6)
            if self.average is None or abs(math.log(mean / self.average)) > math.log(SCENE_CUT_RATIO):
                self.average = mean
            else:
                self.average = self.alpha * self.average + (1 - self.alpha) * mean
            gains.append(self.average / mean)
        gains = torch.tensor(gains, dtype=frames.dtype, device=frames.device).view(-1, 1, 1, 1)
        return (frames * gains).clamp_(0, 1)
