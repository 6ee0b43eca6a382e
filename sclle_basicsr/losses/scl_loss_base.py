"""What every SCL-LLE loss declares, so that SCLLosses and stock BasicSR models can use it without name tables."""
from torch import nn


class SCLLossBase(nn.Module):
    """Base of the four SCL-LLE losses.

    Declarations read by :class:`~sclle_basicsr.losses.scl_losses.SCLLosses`:

    * ``option_key`` / ``log_key``: its ``train:`` option and its log entry (e.g. ``contrastive_opt``, ``l_con``);
    * ``input_names``: the inputs it reads, among ``lq, curves, pos, neg, label``; ``required_inputs``: those it
      cannot do without under its current options;
    * ``vgg_layers`` / ``vgg_inputs``: the VGG-16 layers it needs, and the inputs whose features at those layers
      it needs besides the prediction's.

    ``check_inputs(pred, **inputs)`` validates (and normalises) its inputs; ``from_features(pred, inputs, feats)``
    computes the loss from checked inputs and precomputed features without checking again.

    ``return_pair``: return ``(loss, None)`` instead of the loss, the (perceptual, style) pair that BasicSR's
    SRModel unpacks from a ``perceptual_opt`` loss.  A loss cannot tell which option built it, so this is an option.
    """
    option_key = None
    log_key = None
    input_names = ()
    vgg_layers = ()
    vgg_inputs = ()

    def __init__(self, return_pair=False):
        super().__init__()
        self.return_pair = bool(return_pair)

    @property
    def required_inputs(self):
        return frozenset(self.input_names)

    def check_inputs(self, pred, **inputs):
        raise NotImplementedError

    def from_features(self, pred, inputs, feats):
        raise NotImplementedError

    def as_output(self, value):
        return (value, None) if self.return_pair else value

    def refuse_stock_call(self, needs, remedy):
        """The error for ``loss(output, gt)`` (how a stock BasicSR model calls pixel_opt / perceptual_opt losses)
        when this loss, under its options, cannot mean anything with ``gt`` as its second input."""
        raise ValueError(f'{type(self).__name__} was called as loss(output, gt), the way a stock BasicSR model calls '
                         f'its pixel_opt / perceptual_opt loss, but it needs {needs}, which such a model does not '
                         f'pass. {remedy}')
