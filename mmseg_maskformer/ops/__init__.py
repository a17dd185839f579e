"""Mask-loss and inference ops. Layer 1: depends on torch alone.

Each op runs the compiled kernel (:mod:`.fused`) when the extension (built ahead of time as
``mmseg_maskformer._C``, or compiled on first use) has kernels for the input's device, else its
pure-PyTorch reference (:mod:`.reference`), after one warning. Both paths validate their arguments identically (:mod:`._validation`).
"""
import warnings
from types import ModuleType
from typing import Optional, Sequence, Tuple, Union

import torch

from . import fused, reference
from ._extension import BUILD_HINT, extension_available, load_error, supported_devices

_warned = set()


def _backend(device: torch.device) -> ModuleType:
    if device.type in supported_devices():
        return fused
    error = load_error()
    reason = (f'the compiled extension is not available ({error})' if error else
              f'the compiled extension has no {device.type} kernels')
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f'mmseg_maskformer.ops: {reason}; using the pure-PyTorch reference ops, '
                      f'which are slower and keep full-resolution tensors for backward. To build '
                      f'the extension, {BUILD_HINT}.', RuntimeWarning, stacklevel=3)
    return reference


def sigmoid_focal_dice_loss(mask_logits: torch.Tensor,
                            targets: torch.Tensor,
                            alpha: float = 0.25,
                            gamma: float = 2.0,
                            eps: float = 1.0,
                            valid: Optional[torch.Tensor] = None
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-mask sigmoid focal and dice losses; see :func:`.reference.sigmoid_focal_dice_loss`."""
    return _backend(mask_logits.device).sigmoid_focal_dice_loss(mask_logits, targets, alpha, gamma,
                                                                eps, valid)


def pairwise_mask_costs(mask_logits: torch.Tensor,
                        targets: torch.Tensor,
                        alpha: float = 0.25,
                        gamma: float = 2.0,
                        eps: float = 1.0,
                        valid: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Focal and dice matching costs (Q, M); see :func:`.reference.pairwise_mask_costs`."""
    return _backend(mask_logits.device).pairwise_mask_costs(mask_logits, targets, alpha, gamma, eps,
                                                            valid)


def point_sample(inputs: torch.Tensor, points: torch.Tensor,
                 align_corners: bool = False) -> torch.Tensor:
    """``F.grid_sample`` at (x, y) points in [0, 1]; see :func:`.reference.point_sample`.

    The compiled kernel has no gradient for ``points``: points that require grad (with grad
    enabled) go to the reference, which has one.
    """
    if points.requires_grad and torch.is_grad_enabled():
        return reference.point_sample(inputs, points, align_corners)
    return _backend(inputs.device).point_sample(inputs, points, align_corners)


def point_sampled_focal_dice_loss(mask_logits: torch.Tensor,
                                  points: torch.Tensor,
                                  targets: torch.Tensor,
                                  alpha: float = 0.25,
                                  gamma: float = 2.0,
                                  eps: float = 1.0,
                                  valid: Optional[torch.Tensor] = None,
                                  weights: Tuple[float, float] = (1.0, 1.0)
                                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Focal and dice losses of logits sampled at points; see
    :func:`.reference.point_sampled_focal_dice_loss` and :func:`.fused.point_sampled_focal_dice_loss`
    (what ``weights`` means to it)."""
    return _backend(mask_logits.device).point_sampled_focal_dice_loss(
        mask_logits, points, targets, alpha, gamma, eps, valid, weights)


def select_uncertain_points(candidate_logits: torch.Tensor, candidates: torch.Tensor,
                            num_uncertain: int) -> torch.Tensor:
    """The least certain candidates per mask; see :func:`.reference.select_uncertain_points`."""
    return _backend(candidate_logits.device).select_uncertain_points(candidate_logits, candidates,
                                                                     num_uncertain)


def sample_uncertain_points(mask_logits: torch.Tensor,
                            num_points: int,
                            oversample_ratio: float = 3.0,
                            importance_sample_ratio: float = 0.75,
                            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Mask2Former importance sampling; see :func:`.reference.sample_uncertain_points`."""
    return _backend(mask_logits.device).sample_uncertain_points(mask_logits, num_points,
                                                                oversample_ratio,
                                                                importance_sample_ratio, generator)


def semantic_scores(cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                    size: Sequence[int]) -> torch.Tensor:
    """(B, K, H, W) semantic scores; see :func:`.reference.semantic_scores`."""
    return _backend(mask_logits.device).semantic_scores(cls_logits, mask_logits, size)


def semantic_labels(cls_logits: torch.Tensor,
                    mask_logits: torch.Tensor,
                    input_size: Sequence[int],
                    output_size: Sequence[int],
                    crop: Optional[Sequence[int]] = None,
                    flip: Optional[str] = None,
                    align_corners: bool = False,
                    return_scores: bool = False
                    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """One image's semantic map; see :func:`.reference.semantic_labels`."""
    return _backend(mask_logits.device).semantic_labels(cls_logits, mask_logits, input_size,
                                                        output_size, crop, flip, align_corners,
                                                        return_scores)


def panoptic_assignment(mask_logits: torch.Tensor,
                        scores: torch.Tensor,
                        input_size: Sequence[int],
                        output_size: Sequence[int],
                        crop: Optional[Sequence[int]] = None,
                        flip: Optional[str] = None,
                        align_corners: bool = False
                        ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-pixel winning query and per-query counts; see :func:`.reference.panoptic_assignment`."""
    return _backend(mask_logits.device).panoptic_assignment(mask_logits, scores, input_size,
                                                            output_size, crop, flip, align_corners)


def inference_backend(impl: Optional[str], device: torch.device) -> ModuleType:
    """The module whose inference ops run for ``impl``: ``'fused'`` (:mod:`.fused`, an error when
    it has no kernels for the device), ``'reference'``, or None for fused where it has kernels."""
    if impl is None:
        return fused if device.type in supported_devices() else reference
    if impl == 'reference':
        return reference
    if impl != 'fused':
        raise ValueError(f"impl must be 'fused', 'reference' or None, got {impl!r}")
    if device.type not in supported_devices():
        reason = load_error() or f'it has no {device.type} kernels'
        raise RuntimeError(f"impl='fused' needs the compiled extension ({reason}); {BUILD_HINT}, "
                           f"or set impl='reference'")
    return fused


__all__ = [
    'extension_available', 'fused', 'inference_backend', 'pairwise_mask_costs',
    'panoptic_assignment', 'point_sample', 'point_sampled_focal_dice_loss', 'reference',
    'sample_uncertain_points',
    'select_uncertain_points', 'semantic_labels', 'semantic_scores', 'sigmoid_focal_dice_loss'
]
