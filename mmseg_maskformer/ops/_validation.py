"""Argument checks shared by the reference and the compiled ops.

Every public op validates through these functions so that bad input fails with a message that
names the argument and the problem, whichever implementation runs.
"""
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


def point_sample_dtype(inputs: torch.Tensor) -> torch.dtype:
    """Samples have the dtype of floating inputs; those of bool and uint8 inputs are float32."""
    return inputs.dtype if inputs.is_floating_point() else torch.float32
