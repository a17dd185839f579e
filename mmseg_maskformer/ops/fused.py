"""The compiled (C++/CUDA) implementations of the ops, for callers that select them explicitly.

Same signatures and results as :mod:`mmseg_maskformer.ops.reference`; each function raises
``RuntimeError`` when the extension is not built. They compute in float32 (float64 stays
float64) and keep no full-resolution intermediate for backward.
"""
from typing import Optional, Tuple

import torch

from ._extension import require_extension
from ._validation import (check_cost_inputs, check_loss_inputs, check_point_sample_inputs,
                          check_select_uncertain_inputs)
from .reference import sample_uncertain_points_with


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
    """:func:`mmseg_maskformer.ops.reference.sample_uncertain_points` with the compiled
    ``point_sample`` and ``select_uncertain_points``; both draw the same random numbers."""
    return sample_uncertain_points_with(point_sample, select_uncertain_points, mask_logits,
                                        num_points, oversample_ratio, importance_sample_ratio,
                                        generator)
