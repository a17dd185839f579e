"""Argument checks shared by the reference and the compiled ops.

Every public op validates through these functions so that bad input fails with a message that
names the argument and the problem, whichever implementation runs.
"""
import math
from typing import Optional, Tuple

import torch

_FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
_TARGET_DTYPES = _FLOAT_DTYPES + (torch.bool, torch.uint8)


def check_logits(name: str, logits: torch.Tensor, ndims: Tuple[int, ...]) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(logits).__name__}')
    if logits.dim() not in ndims:
        raise ValueError(f'{name} must have {" or ".join(map(str, ndims))} dimensions, '
                         f'got shape {tuple(logits.shape)}')
    if logits.dtype not in _FLOAT_DTYPES:
        raise TypeError(f'{name} must be float32, float16, bfloat16 or float64, got {logits.dtype}')


def check_targets(name: str, targets: torch.Tensor, logits: torch.Tensor) -> None:
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(targets).__name__}')
    if targets.dtype not in _TARGET_DTYPES:
        raise TypeError(f'{name} must be bool, uint8 or floating point, got {targets.dtype}')
    if targets.device != logits.device:
        raise ValueError(f'{name} is on {targets.device} but the logits are on {logits.device}')
    if targets.dim() != logits.dim():
        raise ValueError(f'{name} must have as many dimensions as the logits '
                         f'({logits.dim()}), got shape {tuple(targets.shape)}')
    # Reading the maximum is a data-dependent host sync that torch.compile cannot trace; compiled
    # graphs skip this one check.
    if (targets.dtype == torch.uint8 and targets.numel() > 0 and
            not torch.compiler.is_compiling() and int(targets.max()) > 1):
        raise ValueError(f'{name} of dtype uint8 must hold 0 or 1, found {int(targets.max())}')


def check_valid(valid: torch.Tensor, logits: torch.Tensor, shape: Tuple[int, ...],
                what: str) -> None:
    """``valid``: bool, or floating weights in [0, 1], of the given shape (``what`` names it)."""
    if not isinstance(valid, torch.Tensor):
        raise TypeError(f'valid must be None or a torch.Tensor, got {type(valid).__name__}')
    if valid.dtype != torch.bool and valid.dtype not in _FLOAT_DTYPES:
        raise TypeError(f'valid must be bool (or floating weights in [0, 1]), got {valid.dtype}')
    if valid.device != logits.device:
        raise ValueError(f'valid is on {valid.device} but the logits are on {logits.device}')
    if tuple(valid.shape) != tuple(shape):
        raise ValueError(f'valid must have the shape of {what} {tuple(shape)}, '
                         f'got {tuple(valid.shape)}')


def check_hyper_parameters(alpha: float, gamma: float, eps: float) -> None:
    if gamma < 0:
        raise ValueError(f'gamma must be >= 0, got {gamma}')
    if alpha > 1:
        raise ValueError(f'alpha must be <= 1 (a negative alpha disables the weighting), got {alpha}')
    if eps < 0:
        raise ValueError(f'eps must be >= 0, got {eps}')


def check_loss_inputs(mask_logits: torch.Tensor, targets: torch.Tensor, alpha: float,
                      gamma: float, eps: float, valid: Optional[torch.Tensor] = None) -> None:
    """(N, h, w) logits with (N, H, W) targets, or (N, K) points with (N, K) targets; ``valid``
    None or of the targets' shape."""
    check_logits('mask_logits', mask_logits, (2, 3))
    check_targets('targets', targets, mask_logits)
    check_hyper_parameters(alpha, gamma, eps)
    if targets.shape[0] != mask_logits.shape[0]:
        raise ValueError(f'mask_logits and targets must hold the same number of masks, got '
                         f'{mask_logits.shape[0]} and {targets.shape[0]}')
    if mask_logits.dim() == 2 and targets.shape != mask_logits.shape:
        raise ValueError(f'point-form targets must have the shape of mask_logits '
                         f'{tuple(mask_logits.shape)}, got {tuple(targets.shape)}')
    if any(s == 0 for s in mask_logits.shape[1:]) or any(s == 0 for s in targets.shape[1:]):
        raise ValueError(f'masks must hold at least one pixel, got mask_logits '
                         f'{tuple(mask_logits.shape)} and targets {tuple(targets.shape)}')
    if valid is not None:
        check_valid(valid, mask_logits, targets.shape, 'the targets')


def check_point_loss_inputs(mask_logits: torch.Tensor, points: torch.Tensor,
                            targets: torch.Tensor, alpha: float, gamma: float, eps: float,
                            valid: Optional[torch.Tensor], weights) -> None:
    """(N, h, w) logits, (N, P, 2) points, (N, P) targets and valid; two finite, non-negative
    weights (of the focal and the dice loss), not both zero."""
    check_logits('mask_logits', mask_logits, (3, ))
    check_point_sample_inputs(mask_logits[:, None], points)
    if targets.shape != points.shape[:2]:
        raise ValueError(f'targets must be (N, P) = {tuple(points.shape[:2])} as the points, got '
                         f'{tuple(targets.shape)}')
    check_loss_inputs(mask_logits.new_empty(1).expand(targets.shape), targets, alpha, gamma, eps,
                      valid)
    if (len(weights) != 2 or not all(math.isfinite(w) and w >= 0 for w in weights)
            or weights[0] == weights[1] == 0):
        raise ValueError(f'weights must be two finite, non-negative numbers (focal, dice), not '
                         f'both 0, got {tuple(weights)}')


def check_cost_inputs(mask_logits: torch.Tensor, targets: torch.Tensor, alpha: float,
                      gamma: float, eps: float, valid: Optional[torch.Tensor] = None) -> None:
    """(Q, h, w) logits with (M, H, W) targets, or (Q, K) points with (M, K) targets; ``valid``
    None, (H, W) or (K,): one map shared by all targets."""
    check_logits('mask_logits', mask_logits, (2, 3))
    check_targets('targets', targets, mask_logits)
    check_hyper_parameters(alpha, gamma, eps)
    if mask_logits.dim() == 2 and targets.shape[1] != mask_logits.shape[1]:
        raise ValueError(f'point-form targets must have as many points as mask_logits '
                         f'({mask_logits.shape[1]}), got shape {tuple(targets.shape)}')
    if any(s == 0 for s in mask_logits.shape[1:]) or any(s == 0 for s in targets.shape[1:]):
        raise ValueError(f'masks must hold at least one pixel, got mask_logits '
                         f'{tuple(mask_logits.shape)} and targets {tuple(targets.shape)}')
    if valid is not None:
        check_valid(valid, mask_logits, targets.shape[1:], 'one target')


def check_point_sample_inputs(inputs: torch.Tensor, points: torch.Tensor) -> None:
    """(N, C, H, W) floating, bool or uint8 inputs with (N, P, 2) floating points."""
    if not isinstance(inputs, torch.Tensor):
        raise TypeError(f'inputs must be a torch.Tensor, got {type(inputs).__name__}')
    if inputs.dim() != 4:
        raise ValueError(f'inputs must have 4 dimensions (N, C, H, W), got shape '
                         f'{tuple(inputs.shape)}')
    if inputs.dtype not in _TARGET_DTYPES:
        raise TypeError(f'inputs must be float32, float16, bfloat16, float64, bool or uint8, got '
                        f'{inputs.dtype}')
    if inputs.shape[2] == 0 or inputs.shape[3] == 0:
        raise ValueError(f'inputs must have a non-empty (H, W), got shape {tuple(inputs.shape)}')
    if not isinstance(points, torch.Tensor) or points.dim() != 3 or points.shape[-1] != 2:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise ValueError(f'points must have shape (N, P, 2) holding (x, y) in [0, 1], got {shape}')
    if not points.is_floating_point():
        raise TypeError(f'points must be floating point, got {points.dtype}')
    if points.shape[0] != inputs.shape[0]:
        raise ValueError(f'inputs and points must have the same batch size, got '
                         f'{inputs.shape[0]} and {points.shape[0]}')
    if points.device != inputs.device:
        raise ValueError(f'points are on {points.device} but inputs are on {inputs.device}')


def check_select_uncertain_inputs(candidate_logits: torch.Tensor, candidates: torch.Tensor,
                                  num_uncertain: int) -> None:
    """(N, C) floating logits of (N, C, 2) floating candidates, 0 <= num_uncertain <= C."""
    check_logits('candidate_logits', candidate_logits, (2, ))
    if (not isinstance(candidates, torch.Tensor) or
            tuple(candidates.shape) != tuple(candidate_logits.shape) + (2, )):
        shape = (tuple(candidates.shape) if isinstance(candidates, torch.Tensor) else
                 type(candidates).__name__)
        raise ValueError(f'candidates must have shape (N, C, 2) = '
                         f'{tuple(candidate_logits.shape) + (2, )} for candidate_logits '
                         f'{tuple(candidate_logits.shape)}, got {shape}')
    if not candidates.is_floating_point():
        raise TypeError(f'candidates must be floating point, got {candidates.dtype}')
    if candidates.device != candidate_logits.device:
        raise ValueError(f'candidates are on {candidates.device} but candidate_logits are on '
                         f'{candidate_logits.device}')
    if not 0 <= num_uncertain <= candidate_logits.shape[1]:
        raise ValueError(f'num_uncertain must be in [0, {candidate_logits.shape[1]}] (the number '
                         f'of candidates), got {num_uncertain}')


def check_sample_uncertain_inputs(mask_logits: torch.Tensor, num_points: int,
                                  oversample_ratio: float,
                                  importance_sample_ratio: float) -> Tuple[int, int]:
    """(N, h, w) floating logits and the sampling ratios; returns Mask2Former's numbers of
    candidates ``int(num_points * oversample_ratio)`` and of uncertain points
    ``int(importance_sample_ratio * num_points)``."""
    check_logits('mask_logits', mask_logits, (3, ))
    if 0 in mask_logits.shape[1:]:
        raise ValueError(f'mask_logits must have a non-empty (h, w), got '
                         f'{tuple(mask_logits.shape)}')
    if not isinstance(num_points, int) or num_points <= 0:
        raise ValueError(f'num_points must be a positive integer, got {num_points!r}')
    if not oversample_ratio >= 1:
        raise ValueError(f'oversample_ratio must be >= 1, got {oversample_ratio}')
    if not 0 <= importance_sample_ratio <= 1:
        raise ValueError(f'importance_sample_ratio must be in [0, 1], got '
                         f'{importance_sample_ratio}')
    num_candidates = int(num_points * oversample_ratio)
    if num_candidates >= 2**31:
        raise ValueError(f'at most 2^31 - 1 candidates per mask, got {num_candidates} '
                         f'(num_points * oversample_ratio)')
    return num_candidates, int(importance_sample_ratio * num_points)


def point_sample_dtype(inputs: torch.Tensor) -> torch.dtype:
    """Samples have the dtype of floating inputs; those of bool and uint8 inputs are float32."""
    return inputs.dtype if inputs.is_floating_point() else torch.float32


def check_finite(name: str, tensor: torch.Tensor) -> None:
    """Non-finite logits would give NaN scores, whose arg-max is meaningless."""
    if not torch.compiler.is_compiling() and not bool(torch.isfinite(tensor).all()):
        bad = (~torch.isfinite(tensor)).nonzero()[0].tolist()
        raise ValueError(f'{name} holds non-finite values (NaN or inf), e.g. at index {bad}: '
                         f'{tensor[tuple(bad)].item()}')


def check_size(name: str, size) -> Tuple[int, int]:
    """Two positive ints (H, W)."""
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be two sizes (H, W), got {size!r}') from None
    if height <= 0 or width <= 0:
        raise ValueError(f'{name} must be positive, got {(height, width)}')
    return height, width


def check_class_and_mask_logits(cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                                batched: bool) -> None:
    """(B, Q, K+1) and (B, Q, h, w) when batched, else (Q, K+1) and (Q, h, w); K+1 >= 2, Q >= 1,
    finite."""
    check_logits('cls_logits', cls_logits, (3, ) if batched else (2, ))
    check_logits('mask_logits', mask_logits, (4, ) if batched else (3, ))
    lead = 2 if batched else 1
    if cls_logits.shape[:lead] != mask_logits.shape[:lead]:
        raise ValueError(f'cls_logits {tuple(cls_logits.shape)} and mask_logits '
                         f'{tuple(mask_logits.shape)} must hold the same '
                         f'{"images and queries" if batched else "queries"}')
    if cls_logits.shape[-1] < 2:
        raise ValueError(f'cls_logits needs K+1 >= 2 columns (K classes and the no-object class), '
                         f'got shape {tuple(cls_logits.shape)}')
    if any(s == 0 for s in mask_logits.shape[lead - 1:]):
        raise ValueError(f'mask_logits must hold at least one query and one pixel, got shape '
                         f'{tuple(mask_logits.shape)}')
    if cls_logits.device != mask_logits.device:
        raise ValueError(f'cls_logits are on {cls_logits.device} but mask_logits are on '
                         f'{mask_logits.device}')
    check_finite('cls_logits', cls_logits)
    check_finite('mask_logits', mask_logits)


def check_geometry(input_size, output_size, crop, flip) -> Tuple[Tuple[int, int], Tuple[int, int],
                                                               Tuple[int, int, int, int],
                                                               Tuple[bool, bool]]:
    """Normalised ``(input_size, output_size, crop, (flip_horizontal, flip_vertical))``: crop
    None is the whole input grid; flip None, ``'horizontal'`` or ``'vertical'``."""
    input_size = check_size('input_size', input_size)
    output_size = check_size('output_size', output_size)
    if crop is None:
        crop = (0, 0) + input_size
    try:
        crop = tuple(int(c) for c in crop)
    except (TypeError, ValueError):
        raise ValueError(f'crop must be (top, left, height, width), got {crop!r}') from None
    if (len(crop) != 4 or crop[0] < 0 or crop[1] < 0 or crop[2] <= 0 or crop[3] <= 0 or
            crop[0] + crop[2] > input_size[0] or crop[1] + crop[3] > input_size[1]):
        raise ValueError(f'crop must be (top, left, height, width) inside the input grid '
                         f'{input_size}, got {crop}')
    if flip not in (None, 'horizontal', 'vertical'):
        raise ValueError(f"flip must be None, 'horizontal' or 'vertical', got {flip!r}")
    return input_size, output_size, crop, (flip == 'horizontal', flip == 'vertical')


def check_panoptic_inputs(mask_logits: torch.Tensor, scores: torch.Tensor) -> None:
    """(Q, h, w) finite mask logits with Q >= 1 and (Q,) floating scores."""
    check_logits('mask_logits', mask_logits, (3, ))
    if any(s == 0 for s in mask_logits.shape):
        raise ValueError(f'mask_logits must hold at least one query and one pixel, got shape '
                         f'{tuple(mask_logits.shape)}')
    if (not isinstance(scores, torch.Tensor) or not scores.is_floating_point() or
            tuple(scores.shape) != (mask_logits.shape[0], )):
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(f'scores must be a floating ({mask_logits.shape[0]},) tensor, one per '
                         f'query of mask_logits, got {shape}')
    if scores.device != mask_logits.device:
        raise ValueError(f'scores are on {scores.device} but mask_logits are on '
                         f'{mask_logits.device}')
    check_finite('mask_logits', mask_logits)
    check_finite('scores', scores)
