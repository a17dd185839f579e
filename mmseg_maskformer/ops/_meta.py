"""Fake kernels and autograd of the compiled ops, for torch.compile, opcheck and training.

The C++ library names this module (``m.set_python_module``), so torch imports it by itself
when it needs a fake kernel; it is imported only once the library is loaded.
"""
import torch
from torch.library import register_autograd, register_fake

from ._validation import point_sample_dtype

_ops = torch.ops.mmseg_maskformer


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


@register_fake('mmseg_maskformer::sigmoid_focal_dice_loss')
def _sigmoid_focal_dice_loss_fake(mask_logits, targets, alpha, gamma, eps, valid=None):
    num_masks, dtype = mask_logits.shape[0], _compute_dtype(mask_logits)
    return (mask_logits.new_empty(num_masks, dtype=dtype),
            mask_logits.new_empty(num_masks, dtype=dtype),
            mask_logits.new_empty((num_masks, 3 if valid is None else 4), dtype=dtype))


@register_fake('mmseg_maskformer::sigmoid_focal_dice_loss_backward')
def _sigmoid_focal_dice_loss_backward_fake(grad_focal, grad_dice, mask_logits, targets, sums,
                                           alpha, gamma, eps, valid=None):
    return torch.empty_like(mask_logits, memory_format=torch.contiguous_format)


@register_fake('mmseg_maskformer::pairwise_mask_costs')
def _pairwise_mask_costs_fake(mask_logits, targets, alpha, gamma, eps, valid=None):
    shape, dtype = (mask_logits.shape[0], targets.shape[0]), _compute_dtype(mask_logits)
    return mask_logits.new_empty(shape, dtype=dtype), mask_logits.new_empty(shape, dtype=dtype)


@register_fake('mmseg_maskformer::point_sample')
def _point_sample_fake(inputs, points, align_corners):
    return inputs.new_empty((inputs.shape[0], inputs.shape[1], points.shape[1]),
                            dtype=point_sample_dtype(inputs))


@register_fake('mmseg_maskformer::point_sample_backward')
def _point_sample_backward_fake(grad_output, points, height, width, align_corners):
    return grad_output.new_empty((grad_output.shape[0], grad_output.shape[1], height, width))


@register_fake('mmseg_maskformer::select_uncertain_points')
def _select_uncertain_points_fake(candidate_logits, candidates, num_uncertain):
    return candidates.new_empty((candidates.shape[0], num_uncertain, 2))


@register_fake('mmseg_maskformer::sample_uncertain_points')
def _sample_uncertain_points_fake(mask_logits, seed, num_points, num_candidates, num_uncertain):
    return mask_logits.new_empty((mask_logits.shape[0], num_points, 2), dtype=torch.float32)


@register_fake('mmseg_maskformer::semantic_scores')
def _semantic_scores_fake(cls_logits, mask_logits, height, width):
    shape = (mask_logits.shape[0], cls_logits.shape[-1] - 1, height, width)
    return mask_logits.new_empty(shape, dtype=_compute_dtype(mask_logits))


@register_fake('mmseg_maskformer::semantic_labels')
def _semantic_labels_fake(cls_logits, mask_logits, input_size, crop, output_size,
                          flip_horizontal, flip_vertical, align_corners):
    return (mask_logits.new_empty(tuple(output_size), dtype=torch.long),
            mask_logits.new_empty(tuple(output_size), dtype=_compute_dtype(mask_logits)))


@register_fake('mmseg_maskformer::panoptic_assignment')
def _panoptic_assignment_fake(mask_logits, scores, input_size, crop, output_size,
                              flip_horizontal, flip_vertical, align_corners):
    queries = mask_logits.shape[0]
    return (mask_logits.new_empty(tuple(output_size), dtype=torch.long),
            mask_logits.new_empty((queries, ), dtype=torch.long),
            mask_logits.new_empty((queries, ), dtype=torch.long))


def _loss_setup_context(ctx, inputs, output):
    mask_logits, targets, alpha, gamma, eps, valid = inputs
    # Three floats per mask (four with valid); the backward recomputes everything else from
    # logits, targets and valid.
    ctx.save_for_backward(mask_logits, targets, valid, output[2])
    ctx.hyper_parameters = (alpha, gamma, eps)
    ctx.mark_non_differentiable(output[2])


def _loss_backward(ctx, grad_focal, grad_dice, _grad_sums):
    mask_logits, targets, valid, sums = ctx.saved_tensors
    if not ctx.needs_input_grad[0]:
        return None, None, None, None, None, None
    if grad_focal is None:
        grad_focal = sums.new_zeros(sums.shape[0])
    if grad_dice is None:
        grad_dice = sums.new_zeros(sums.shape[0])
    grad = _ops.sigmoid_focal_dice_loss_backward(grad_focal, grad_dice, mask_logits, targets, sums,
                                                 *ctx.hyper_parameters, valid)
    return grad, None, None, None, None, None


register_autograd('mmseg_maskformer::sigmoid_focal_dice_loss', _loss_backward,
                  setup_context=_loss_setup_context)


def _pairwise_mask_costs_backward(ctx, grad_focal, grad_dice):
    raise RuntimeError('the compiled pairwise_mask_costs has no backward: matching costs are '
                       'computed under torch.no_grad(); use '
                       'mmseg_maskformer.ops.reference.pairwise_mask_costs to differentiate them')


register_autograd('mmseg_maskformer::pairwise_mask_costs', _pairwise_mask_costs_backward)


def _inference_backward(ctx, *grads):
    raise RuntimeError('the compiled inference ops (semantic_scores, semantic_labels, '
                       'panoptic_assignment) have no backward; use the functions of '
                       'mmseg_maskformer.ops.reference to differentiate them')


for _name in ('semantic_scores', 'semantic_labels', 'panoptic_assignment'):
    register_autograd(f'mmseg_maskformer::{_name}', _inference_backward)


def _point_sample_setup_context(ctx, inputs, output):
    features, points, align_corners = inputs
    ctx.save_for_backward(points)
    ctx.input_size = features.shape[-2:]
    ctx.align_corners = align_corners


def _point_sample_backward(ctx, grad_output):
    if not ctx.needs_input_grad[0]:
        return None, None, None
    points, = ctx.saved_tensors
    height, width = ctx.input_size
    return (_ops.point_sample_backward(grad_output, points, height, width, ctx.align_corners),
            None, None)


register_autograd('mmseg_maskformer::point_sample', _point_sample_backward,
                  setup_context=_point_sample_setup_context)
