"""Bipartite matching of predictions to ground-truth segments (official MaskFormer and Mask2Former
matchers)."""
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from .loss_terms import MASKFORMER_MATCH_COSTS, parse_match_costs
from .mask_functions import get_mask_functions


def classification_cost(cls_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """-p(c_j) for every prediction i and target j: (Q, K+1) logits, (M,) labels -> (Q, M)."""
    return -cls_logits.float().softmax(-1)[:, labels]


def sampled_validity(functions, valid: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bool (N, 1, H, W) valid maps bilinearly sampled at (N, P, 2) points: (N, 1, P) weights.

    The bilinear average over the corners inside the image (the sampled map divided by the
    sampled all-ones map), so that the zero padding of the sampling neither down-weights border
    points of valid regions nor lends weight to ignored ones; an all-valid map gives exactly 1.
    """
    ones = valid.new_ones((1, 1) + valid.shape[-2:], dtype=torch.float32)
    inside = functions.point_sample(ones.expand(valid.shape[0], -1, -1, -1), points)
    return functions.point_sample(valid, points) / inside


class NonFiniteCostError(FloatingPointError):
    """A cost matrix holds NaN or infinity; ``index`` is its position in the batch."""

    def __init__(self, index: int):
        super().__init__(f'cost matrix {index} is not finite')
        self.index = index


def hungarian_assignment(costs: Sequence[torch.Tensor]) -> List[Tuple[torch.Tensor, torch.Tensor]]:
    """Minimum-cost assignment for each (Q, M) matrix, with one device-to-host transfer in all.

    Returns per matrix ``(pred_idx, gt_idx)`` int64 CPU tensors sorted by ``pred_idx``.
    Raises :class:`NonFiniteCostError` rather than letting scipy fail on NaN.
    """
    if len(costs) == 0:
        return []
    flat = torch.cat([c.detach().float().reshape(-1) for c in costs]).cpu().numpy()
    results = []
    offset = 0
    for cost in costs:
        size = cost.numel()
        matrix = flat[offset:offset + size].reshape(cost.shape)
        offset += size
        if not np.isfinite(matrix).all():
            raise NonFiniteCostError(len(results))
        rows, cols = linear_sum_assignment(matrix)
        results.append((torch.as_tensor(rows, dtype=torch.int64),
                        torch.as_tensor(cols, dtype=torch.int64)))
    return results


class HungarianMatcher:
    """Official matching: C = Σ weight·cost over the configured ``match_costs``.

    ``match_costs`` is a list of mmdet-style cost dicts (:func:`.loss_terms.parse_match_costs`):
    ``ClassificationCost`` (−p(class)), one mask cost (``FocalLossCost``, MaskFormer's, or
    ``CrossEntropyLossCost`` with ``use_sigmoid=True``, Mask2Former's) and ``DiceCost``; the
    default is MaskFormer's class 1, focal 20, dice 1
    (:data:`.loss_terms.MASK2FORMER_MATCH_COSTS`: 2, BCE 5, dice 5).

    With ``num_points=None`` the ground truth is nearest-downsampled to the mask-logit resolution
    and costs use every pixel (the official matcher). With ``num_points=K`` both are sampled at K
    shared uniformly random points per image (Mask2Former).

    Given per-image valid maps (``gt_valid``, the criterion's ``ignore_mode='exclude'``), the
    mask and dice costs count only the valid pixels (sampled at the same points as the masks,
    as weights, with ``num_points``); without them every pixel counts, as officially.

    Non-finite costs raise a ``FloatingPointError`` naming the image, the cost term and the
    input that caused it, instead of crashing inside scipy.
    """

    def __init__(self,
                 match_costs: Sequence[Mapping] = MASKFORMER_MATCH_COSTS,
                 num_points: Optional[int] = None,
                 loss_impl: Optional[str] = None):
        if num_points is not None and num_points <= 0:
            raise ValueError(f'num_points must be None or positive, got {num_points}')
        self.costs = parse_match_costs(match_costs)
        self.num_points = num_points
        self.functions = get_mask_functions(loss_impl)

    @torch.no_grad()
    def cost_terms(self, cls_logits: torch.Tensor, mask_logits: torch.Tensor, gt_labels: torch.Tensor,
                   gt_masks: torch.Tensor,
                   generator: Optional[torch.Generator] = None,
                   gt_valid: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """Unweighted (class, mask, dice) cost matrices (Q, M) of one image; ``gt_valid``: None
        or the (H, W) bool map of the pixels that count. The mask and dice costs are zeros when
        neither is configured."""
        return self.layer_cost_terms([cls_logits], [mask_logits], gt_labels, gt_masks, generator,
                                     gt_valid)[0]

    @torch.no_grad()
    def layer_cost_terms(self, layer_cls_logits: Sequence[torch.Tensor],
                         layer_mask_logits: Sequence[torch.Tensor], gt_labels: torch.Tensor,
                         gt_masks: torch.Tensor,
                         generator: Optional[torch.Generator] = None,
                         gt_valid: Optional[torch.Tensor] = None) -> List[Tuple[torch.Tensor, ...]]:
        """:meth:`cost_terms` of several decoder layers of one image, per layer.

        With ``num_points`` all layers are costed at the same random points, drawn once; the
        targets are sampled once and each layer's logits separately (a stack of the layers
        would be a copy of them).
        """
        fn, weights = self.functions, self.costs
        costs_class = [classification_cost(cls, gt_labels) for cls in layer_cls_logits]
        if gt_labels.numel() == 0 or weights.mask_weight == weights.dice_weight == 0:
            return [(cost, cost.new_zeros(cost.shape), cost.new_zeros(cost.shape))
                    for cost in costs_class]
        if self.num_points is None:
            targets, valid = gt_masks, gt_valid

            def sample(logits):
                return logits
        else:
            points = torch.rand(1, self.num_points, 2, device=layer_mask_logits[0].device,
                                generator=generator)
            targets = fn.point_sample(gt_masks[None], points)[0]
            valid = None if gt_valid is None else sampled_validity(fn, gt_valid[None, None],
                                                                   points)[0, 0]

            def sample(logits):
                return fn.point_sample(logits[None], points)[0]
        costs = []
        for cost_class, masks in zip(costs_class, layer_mask_logits):
            cost_mask, cost_dice = fn.pairwise_mask_costs(
                sample(masks), targets, alpha=weights.alpha, gamma=weights.gamma,
                eps=weights.eps, valid=valid)
            costs.append((cost_class, cost_mask, cost_dice))
        return costs

    @torch.no_grad()
    def __call__(self,
                 cls_logits: torch.Tensor,
                 mask_logits: torch.Tensor,
                 gt_labels: Sequence[torch.Tensor],
                 gt_masks: Sequence[torch.Tensor],
                 generator: Optional[torch.Generator] = None,
                 gt_valid: Optional[Sequence[torch.Tensor]] = None
                 ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """Match one decoder layer's predictions for a batch.

        Args:
            cls_logits: (B, Q, K+1) class logits.
            mask_logits: (B, Q, h, w) mask logits.
            gt_labels: B tensors (M_b,) of class ids.
            gt_masks: B tensors (M_b, H, W) of binary masks.
            gt_valid: None, or B (H, W) bool maps of the pixels that count in the mask costs.

        Returns:
            B pairs ``(pred_idx, gt_idx)`` of int64 tensors on the logits' device.
        """
        return self.match_layers([cls_logits], [mask_logits], gt_labels, gt_masks, generator,
                                 gt_valid)[0]

    @torch.no_grad()
    def match_layers(self,
                     all_cls_logits: Sequence[torch.Tensor],
                     all_mask_logits: Sequence[torch.Tensor],
                     gt_labels: Sequence[torch.Tensor],
                     gt_masks: Sequence[torch.Tensor],
                     generator: Optional[torch.Generator] = None,
                     gt_valid: Optional[Sequence[torch.Tensor]] = None):
        """:meth:`__call__` for several decoder layers, with one host transfer for all of them.

        With ``num_points`` the random points are shared by all layers of an image.
        Returns a list (per layer) of lists (per image) of ``(pred_idx, gt_idx)``.
        """
        batch_size = all_cls_logits[0].shape[0]
        if len(gt_labels) != batch_size or len(gt_masks) != batch_size:
            raise ValueError(f'got {len(gt_labels)} label sets and {len(gt_masks)} mask sets for '
                             f'a batch of {batch_size} predictions')
        if gt_valid is not None and len(gt_valid) != batch_size:
            raise ValueError(f'got {len(gt_valid)} valid maps for a batch of {batch_size} '
                             'predictions')
        weights = (self.costs.cls_weight, self.costs.mask_weight, self.costs.dice_weight)
        num_layers = len(all_cls_logits)
        per_image = [  # per image, per layer, the (Q, M) class, mask and dice costs
            self.layer_cost_terms([layer[image] for layer in all_cls_logits],
                                  [layer[image] for layer in all_mask_logits], labels, gts,
                                  generator, None if gt_valid is None else gt_valid[image])
            for image, (labels, gts) in enumerate(zip(gt_labels, gt_masks))]
        terms, totals = [], []
        for layer in range(num_layers):
            for image in range(batch_size):
                terms.append(per_image[image][layer])
                totals.append(sum(w * t for w, t in zip(weights, terms[-1])))
        try:
            assignment = hungarian_assignment(totals)
        except NonFiniteCostError as error:
            layer, image = divmod(error.index, batch_size)
            self._raise_non_finite(image, terms[error.index], all_cls_logits[layer],
                                   all_mask_logits[layer])
        device = all_cls_logits[0].device
        assignment = [(rows.to(device), cols.to(device)) for rows, cols in assignment]
        return [assignment[i:i + batch_size] for i in range(0, len(assignment), batch_size)]

    @staticmethod
    def _raise_non_finite(image, image_terms, cls_logits, mask_logits):
        for name, term in zip(('class', 'mask', 'dice'), image_terms):
            if torch.isfinite(term).all():
                continue
            kind = 'class' if name == 'class' else 'mask'
            source = (cls_logits if kind == 'class' else mask_logits)[image]
            if not torch.isfinite(source).all():
                cause = (f'the {kind} logits of image {image} contain '
                         f'{int(torch.isnan(source).sum())} NaN and '
                         f'{int(torch.isinf(source).sum())} infinite values')
            else:
                cause = 'the ground-truth masks hold values outside [0, 1]'
            raise FloatingPointError(
                f'matching cost {name!r} of image {image} is not finite: {cause}. This usually '
                'means training diverged (try a lower learning rate, gradient clipping, or '
                'float32 instead of fp16).')
        raise FloatingPointError(f'matching cost of image {image} is not finite: the cost '
                                 'weights are not finite')

