"""The compiled (C++/CUDA) implementations of the ops, for callers that select them explicitly.

Same signatures and results as :mod:`mmseg_maskformer.ops.reference`; each function raises
``RuntimeError`` when the extension is not built. They compute in float32 (float64 stays
float64) and keep no full-resolution intermediate for backward; the inference ops hold a few
output rows of masks and scores at a time.
"""
from typing import Optional, Sequence, Tuple, Union

import torch

from ._extension import require_extension
from ._validation import (check_class_and_mask_logits, check_cost_inputs, check_geometry,
                          check_loss_inputs, check_panoptic_inputs, check_point_loss_inputs,
                          check_point_sample_inputs, check_sample_uncertain_inputs,
                          check_select_uncertain_inputs, check_size)
from .reference import draw_seed


def _ops():
    require_extension()
    return torch.ops.mmseg_maskformer


def sigmoid_focal_dice_loss(mask_logits: torch.Tensor,
                            targets: torch.Tensor,
                            alpha: float = 0.25,
                            gamma: float = 2.0,
                            eps: float = 1.0,
                            valid: Optional[torch.Tensor] = None
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-mask sigmoid focal loss (mean over pixels) and dice loss, fused.

    See :func:`mmseg_maskformer.ops.reference.sigmoid_focal_dice_loss`. Dense logits are
    resampled to the target size inside the kernel, and backward saves three floats per mask
    (sums of p, t and p*t; and the valid count with ``valid``) besides its inputs. ``valid`` is
    read in place with its strides: an expanded view of one map per image costs no copy.
    """
    check_loss_inputs(mask_logits, targets, alpha, gamma, eps, valid)
    focal, dice, _ = _ops().sigmoid_focal_dice_loss(mask_logits, targets, float(alpha),
                                                    float(gamma), float(eps), valid)
    return focal, dice


def pairwise_mask_costs(mask_logits: torch.Tensor,
                        targets: torch.Tensor,
                        alpha: float = 0.25,
                        gamma: float = 2.0,
                        eps: float = 1.0,
                        valid: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Focal and dice matching costs as two GEMMs, in full float32 whatever the TF32 settings.

    See :func:`mmseg_maskformer.ops.reference.pairwise_mask_costs`. Not differentiable: its
    backward raises (matching runs under ``torch.no_grad()``).
    """
    check_cost_inputs(mask_logits, targets, alpha, gamma, eps, valid)
    return _ops().pairwise_mask_costs(mask_logits, targets, float(alpha), float(gamma), float(eps),
                                      valid)


def point_sample(inputs: torch.Tensor, points: torch.Tensor,
                 align_corners: bool = False) -> torch.Tensor:
    """Bilinear samples of ``inputs`` (N, C, H, W) at ``points`` (N, P, 2), (x, y) in [0, 1].

    See :func:`mmseg_maskformer.ops.reference.point_sample`. Differentiable with respect to
    ``inputs`` only: points come from a no-grad sampler, so there is no gradient for them, and
    points that require grad are rejected rather than silently given none.
    """
    check_point_sample_inputs(inputs, points)
    if points.requires_grad and torch.is_grad_enabled():
        raise ValueError('the compiled point_sample is not differentiable with respect to points; '
                         'pass points.detach() or use mmseg_maskformer.ops.reference.point_sample')
    return _ops().point_sample(inputs, points, bool(align_corners))


class _PointSampledFocalDiceLoss(torch.autograd.Function):
    """Forward also computes the gradient, scattered to the (N, h, w) logit maps for the losses'
    configured weights, and keeps only that map: 4 bytes per logit pixel instead of the points,
    sampled logits and targets (16 bytes per point; 12544 points of a 128² map) that the
    sample-then-loss chain keeps for backward."""

    @staticmethod
    def forward(ctx, mask_logits, points, targets, alpha, gamma, eps, valid, weights):
        ops = _ops()
        logits = ops.point_sample(mask_logits[:, None], points, False)[:, 0]
        focal, dice, sums = ops.sigmoid_focal_dice_loss(logits, targets, alpha, gamma, eps, valid)
        ctx.weights = weights
        if ctx.needs_input_grad[0]:
            per_mask = [sums.new_full(sums.shape[:1], w) for w in weights]
            grad_points = ops.sigmoid_focal_dice_loss_backward(*per_mask, logits, targets, sums,
                                                               alpha, gamma, eps, valid)
            grad_map = ops.point_sample_backward(grad_points[:, None], points,
                                                 mask_logits.shape[-2], mask_logits.shape[-1],
                                                 False)[:, 0]
            ctx.save_for_backward(grad_map.to(mask_logits.dtype))
        return focal, dice

    @staticmethod
    def backward(ctx, grad_focal, grad_dice):
        grad_map, = ctx.saved_tensors
        scale = _common_scale(grad_focal, grad_dice, ctx.weights)
        return grad_map * scale[:, None, None].to(grad_map.dtype), *(None, ) * 7


def _common_scale(grad_focal, grad_dice, weights) -> torch.Tensor:
    """The per-mask c with (grad_focal, grad_dice) = c · weights, or an error saying why the map
    saved for backward cannot serve."""
    w_focal, w_dice = weights  # autograd passes zeros, not None, for an unused output
    scale = grad_focal / w_focal if w_focal else grad_dice / w_dice
    if not (torch.allclose(grad_focal, scale * w_focal, rtol=1e-4, atol=0)
            and torch.allclose(grad_dice, scale * w_dice, rtol=1e-4, atol=0)):
        raise RuntimeError(
            'point_sampled_focal_dice_loss: the focal and dice losses reached the total loss with '
            f'weights other than the ones it was given ({w_focal:g}, {w_dice:g}), e.g. a loss '
            'scaled after the criterion: set the weights in loss_mask / loss_dice instead, or use '
            "loss_impl='reference'")
    return scale


def point_sampled_focal_dice_loss(mask_logits: torch.Tensor,
                                  points: torch.Tensor,
                                  targets: torch.Tensor,
                                  alpha: float = 0.25,
                                  gamma: float = 2.0,
                                  eps: float = 1.0,
                                  valid: Optional[torch.Tensor] = None,
                                  weights: Tuple[float, float] = (1.0, 1.0)
                                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`mmseg_maskformer.ops.reference.point_sampled_focal_dice_loss`, keeping one (N, h, w)
    gradient map for backward. That map is computed for ``weights``, the factors with which the
    focal and the dice loss enter the total (up to a common per-mask factor such as
    1 / num_masks or a loss scale): a backward with another ratio raises an error."""
    check_point_loss_inputs(mask_logits, points, targets, alpha, gamma, eps, valid, weights)
    if points.requires_grad and torch.is_grad_enabled():
        raise ValueError('point_sampled_focal_dice_loss is not differentiable with respect to '
                         'points; pass points.detach()')
    return _PointSampledFocalDiceLoss.apply(mask_logits, points, targets, float(alpha),
                                            float(gamma), float(eps), valid,
                                            tuple(float(w) for w in weights))


def select_uncertain_points(candidate_logits: torch.Tensor, candidates: torch.Tensor,
                            num_uncertain: int) -> torch.Tensor:
    """The candidates with the least certain logits, by a per-mask selection on CPU.

    See :func:`mmseg_maskformer.ops.reference.select_uncertain_points`; the same set (candidates
    with equal ``|logit|`` go by index), in another order. Not differentiable (points carry no
    gradient).
    """
    check_select_uncertain_inputs(candidate_logits, candidates, num_uncertain)
    return _ops().select_uncertain_points(candidate_logits, candidates, int(num_uncertain))


def sample_uncertain_points(mask_logits: torch.Tensor,
                            num_points: int,
                            oversample_ratio: float = 3.0,
                            importance_sample_ratio: float = 0.75,
                            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Mask2Former's importance sampling in one op: the points of
    :func:`mmseg_maskformer.ops.reference.sample_uncertain_points` (the same Philox draws from
    the same seed, the same selection), with the uncertain ones in another order.

    On the CPU each mask's candidates are drawn, sampled and selected in a per-thread buffer,
    without the (N, C, 2) candidate tensor, on all threads (``torch.rand`` draws on one);
    on CUDA the candidates are drawn and sampled by one kernel and selected with ``topk``.
    """
    num_candidates, num_uncertain = check_sample_uncertain_inputs(
        mask_logits, num_points, oversample_ratio, importance_sample_ratio)
    seed = draw_seed(mask_logits.device, generator)
    return _ops().sample_uncertain_points(mask_logits.detach(), seed, num_points, num_candidates,
                                          num_uncertain)


def semantic_scores(cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                    size: Sequence[int]) -> torch.Tensor:
    """(B, K, H, W) semantic scores without a (B, Q, H, W) tensor: blocks of rows of the upsampled
    sigmoid maps contracted by a GEMM straight into the output.

    See :func:`mmseg_maskformer.ops.reference.semantic_scores`. Not differentiable.
    """
    check_class_and_mask_logits(cls_logits, mask_logits, batched=True)
    height, width = check_size('size', size)
    return _ops().semantic_scores(cls_logits, mask_logits, height, width)


def semantic_labels(cls_logits: torch.Tensor,
                    mask_logits: torch.Tensor,
                    input_size: Sequence[int],
                    output_size: Sequence[int],
                    crop: Optional[Sequence[int]] = None,
                    flip: Optional[str] = None,
                    align_corners: bool = False,
                    return_scores: bool = False
                    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """The (H, W) semantic map of one image without a (Q, H, W) or (K, H, W) tensor.

    See :func:`mmseg_maskformer.ops.reference.semantic_labels`. The crop, flip and resize are
    linear, so they are applied to the sigmoid maps of a few output rows at a time, which one
    GEMM then turns into those rows' class scores and their arg-max. Labels equal the
    reference's except where the two best classes are within float rounding of each other
    (the sums run in another order); equal maxima give the lowest class in both.
    """
    check_class_and_mask_logits(cls_logits, mask_logits, batched=False)
    input_size, output_size, crop, flips = check_geometry(input_size, output_size, crop, flip)
    labels, best = _ops().semantic_labels(cls_logits, mask_logits, list(input_size), list(crop),
                                          list(output_size), flips[0], flips[1],
                                          bool(align_corners))
    return (labels, best) if return_scores else labels


def panoptic_assignment(mask_logits: torch.Tensor,
                        scores: torch.Tensor,
                        input_size: Sequence[int],
                        output_size: Sequence[int],
                        crop: Optional[Sequence[int]] = None,
                        flip: Optional[str] = None,
                        align_corners: bool = False
                        ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(owner, won, area)`` of the kept queries in one pass over blocks of output rows.

    See :func:`mmseg_maskformer.ops.reference.panoptic_assignment`.
    """
    check_panoptic_inputs(mask_logits, scores)
    input_size, output_size, crop, flips = check_geometry(input_size, output_size, crop, flip)
    return _ops().panoptic_assignment(mask_logits, scores, list(input_size), list(crop),
                                      list(output_size), flips[0], flips[1], bool(align_corners))
