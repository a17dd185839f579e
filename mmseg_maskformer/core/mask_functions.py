"""The one place where the criterion and the matcher get their per-mask functions.

``loss_impl='reference'`` selects the pure-PyTorch formulas of the official implementation,
``'fused'`` the compiled C++/CUDA ops (numerically the same loss, without the N×H×W
intermediates; an error when the extension is not built). ``None`` dispatches per call: the
compiled op when the extension has kernels for the tensors' device, else the reference after one
warning line.
"""
from types import SimpleNamespace
from typing import Optional

from .. import ops

LOSS_IMPLS = ('reference', 'fused')


def get_mask_functions(loss_impl: Optional[str] = None) -> SimpleNamespace:
    """Returns a namespace with ``sigmoid_focal_dice_loss``, ``point_sampled_focal_dice_loss``,
    ``pairwise_mask_costs``,
    ``point_sample`` and ``sample_uncertain_points`` of the chosen implementation."""
    if loss_impl is None:
        source = ops
    elif loss_impl == 'reference':
        source = ops.reference
    elif loss_impl == 'fused':
        if not ops.extension_available():
            raise RuntimeError(
                "loss_impl='fused' needs the compiled extension mmseg_maskformer._C, which is not "
                "built; run `pip install -e . --no-build-isolation` or use loss_impl='reference'")
        source = ops.fused
    else:
        raise ValueError(f'loss_impl must be one of {LOSS_IMPLS} or None, got {loss_impl!r}')
    return SimpleNamespace(
        name=loss_impl or 'auto',
        sigmoid_focal_dice_loss=source.sigmoid_focal_dice_loss,
        point_sampled_focal_dice_loss=source.point_sampled_focal_dice_loss,
        pairwise_mask_costs=source.pairwise_mask_costs,
        point_sample=source.point_sample,
        sample_uncertain_points=source.sample_uncertain_points)
