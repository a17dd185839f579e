"""The set criterion of MaskFormer and Mask2Former (official ``modeling/criterion.py`` of both
repositories)."""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .loss_terms import MASKFORMER_LOSSES, MaskTerm, parse_losses
from .mask_functions import get_mask_functions
from .matching import HungarianMatcher, sampled_validity
from .targets import concatenated


def average_num_masks(gt_labels: Sequence[torch.Tensor], device: torch.device) -> torch.Tensor:
    """Number of ground-truth segments per process, averaged over all processes, at least 1.

    Every process normalises its mask losses by the same number, so that the gradient summed by
    DDP equals the gradient of the loss of the global batch.
    """
    num_masks = torch.tensor(float(sum(len(labels) for labels in gt_labels)), device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(num_masks)
        num_masks = num_masks / dist.get_world_size()
    return num_masks.clamp(min=1)


def _matched_valid(gt_valid: Sequence[torch.Tensor],
                   indices: List[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """(N, H, W): each matched mask's image valid map."""
    return torch.cat([gt_valid[image][None].expand(len(gt_idx), -1, -1)
                      for image, (_, gt_idx) in enumerate(indices)])


IGNORE_MODES = ('negative', 'exclude')


class SetCriterion:
    """Hungarian matching, then the class loss and the mask losses, per decoder layer.

    Args:
        num_classes: K (the ∅ class is K).
        matcher: the :class:`HungarianMatcher`.
        loss_cls, loss_mask, loss_dice: mmdet-style term configs (:func:`.loss_terms.parse_losses`;
            ``loss_mask`` or ``loss_dice`` None drops the term). Defaults: MaskFormer's official
            CE 1 (∅ 0.1), focal 20 (α 0.25, γ 2), dice 1; Mask2Former's are
            :data:`.loss_terms.MASK2FORMER_LOSSES`.
        loss_impl: ``'reference'``, ``'fused'`` or ``None`` (see :mod:`.mask_functions`).
        num_points: ``None`` computes the mask losses at full ground-truth resolution (official
            MaskFormer); an integer K computes them on K importance-sampled points per mask
            (Mask2Former).
        oversample_ratio, importance_sample_ratio: of the importance sampling (official 3, 0.75).
        ignore_mode: ``'negative'`` (official): ignored pixels are negatives in every mask.
            ``'exclude'``: they count in no mask loss and no matching cost; the call then needs
            the per-image valid maps ``gt_valid``. The focal loss is averaged over the valid
            pixels, and point-sampled losses weight each point by its sampled validity.
    """

    def __init__(self,
                 num_classes: int,
                 matcher: HungarianMatcher,
                 loss_cls: Mapping = MASKFORMER_LOSSES['loss_cls'],
                 loss_mask: Optional[Mapping] = MASKFORMER_LOSSES['loss_mask'],
                 loss_dice: Optional[Mapping] = MASKFORMER_LOSSES['loss_dice'],
                 loss_impl: Optional[str] = None,
                 num_points: Optional[int] = None,
                 oversample_ratio: float = 3.0,
                 importance_sample_ratio: float = 0.75,
                 ignore_mode: str = 'negative'):
        if num_points is not None and num_points <= 0:
            raise ValueError(f'num_points must be None or positive, got {num_points}')
        if ignore_mode not in IGNORE_MODES:
            raise ValueError(f'ignore_mode must be one of {IGNORE_MODES}, got {ignore_mode!r}')
        self.num_classes = num_classes
        self.matcher = matcher
        self.terms = parse_losses(num_classes, loss_cls, loss_mask, loss_dice)
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.ignore_mode = ignore_mode
        self.functions = get_mask_functions(loss_impl)

    def __call__(self,
                 all_cls_logits: Sequence[torch.Tensor],
                 all_mask_logits: Sequence[torch.Tensor],
                 gt_labels: Sequence[torch.Tensor],
                 gt_masks: Sequence[torch.Tensor],
                 generator: Optional[torch.Generator] = None,
                 gt_valid: Optional[Sequence[torch.Tensor]] = None) -> Dict[str, torch.Tensor]:
        """Weighted losses of every decoder layer.

        Args:
            all_cls_logits: per layer (B, Q, K+1), last layer last.
            all_mask_logits: per layer (B, Q, h, w).
            gt_labels: B tensors (M_b,) of class ids in [0, K).
            gt_masks: B tensors (M_b, H, W) of binary masks (bool / uint8 / float), all at the
                padded input resolution.
            gt_valid: B (H, W) bool maps of the pixels that are not ignored; required with
                ``ignore_mode='exclude'``, not used with ``'negative'``.

        Returns:
            ``loss_cls``, ``loss_mask``, ``loss_dice`` of the last layer, ``d{i}.loss_*`` of the
            intermediate layers i = 0..L-2, and ``num_masks`` (no gradient) for logging.
        """
        self._check_inputs(all_cls_logits, all_mask_logits, gt_labels, gt_masks)
        gt_valid = self._valid_maps(gt_valid, gt_masks)
        device = all_cls_logits[-1].device
        num_masks = average_num_masks(gt_labels, device)
        indices = self.matcher.match_layers(all_cls_logits, all_mask_logits, gt_labels, gt_masks,
                                            generator, gt_valid)
        num_layers = len(all_cls_logits)
        # The exact losses save their targets for backward: one concatenation of all masks (and
        # valid maps) shared by every layer, instead of one matched copy per layer; no copy at
        # all when the masks are views of one buffer (pack_masks).
        shared = None
        if self.num_points is None:
            every_mask = [(None, torch.arange(len(masks))) for masks in gt_masks]
            shared = (concatenated(gt_masks),
                      None if gt_valid is None else _matched_valid(gt_valid, every_mask))
        losses, terms = {}, self.terms
        for layer, (cls_logits, mask_logits, layer_indices) in enumerate(
                zip(all_cls_logits, all_mask_logits, indices)):
            prefix = '' if layer == num_layers - 1 else f'd{layer}.'
            loss_cls = self.loss_classes(cls_logits, gt_labels, layer_indices)
            losses[prefix + 'loss_cls'] = terms.cls_weight * loss_cls
            if terms.mask is None and terms.dice is None:
                continue
            loss_mask, loss_dice = self.loss_masks(mask_logits, gt_masks, layer_indices, num_masks,
                                                   generator, gt_valid, shared)
            if terms.mask is not None:
                losses[prefix + 'loss_mask'] = terms.mask.weight * loss_mask
            if terms.dice is not None:
                losses[prefix + 'loss_dice'] = terms.dice.weight * loss_dice
        losses['num_masks'] = num_masks.detach()
        return losses

    def loss_classes(self, cls_logits: torch.Tensor, gt_labels: Sequence[torch.Tensor],
                     indices: List[Tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """Cross-entropy over K+1 classes, unmatched queries -> ∅, weighted mean."""
        batch_size, num_queries = cls_logits.shape[:2]
        target = torch.full((batch_size, num_queries), self.num_classes, dtype=torch.long,
                            device=cls_logits.device)
        for image, (pred_idx, gt_idx) in enumerate(indices):
            target[image, pred_idx] = gt_labels[image][gt_idx]
        weights = self.terms.class_weights.to(cls_logits.device)
        return F.cross_entropy(cls_logits.float().transpose(1, 2), target, weights)

    def loss_masks(self, mask_logits: torch.Tensor, gt_masks: Sequence[torch.Tensor],
                   indices: List[Tuple[torch.Tensor, torch.Tensor]], num_masks: torch.Tensor,
                   generator: Optional[torch.Generator] = None,
                   gt_valid: Optional[Sequence[torch.Tensor]] = None,
                   shared: Optional[Tuple[torch.Tensor, Optional[torch.Tensor]]] = None
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Mask (focal or BCE) and dice losses of the matched masks, summed and divided by
        ``num_masks``, unweighted;
        ``gt_valid``: None, or per image the (H, W) bool map of the pixels that count;
        ``shared``: the masks concatenated (:func:`.targets.concatenated`) and the matching
        concatenation of valid maps, used as the targets when every mask is matched (always,
        unless an image has more than Q)."""
        if self.num_points is None:
            # Pairs in ground-truth order, so that a full matching lines up with ``shared``.
            orders = [gt_idx.argsort() for _, gt_idx in indices]
            indices = [(pred_idx[order], gt_idx[order])
                       for (pred_idx, gt_idx), order in zip(indices, orders)]
        # One gather for the batch: its backward writes one (B, Q, h, w) gradient, where a
        # gather per image would allocate one such gradient per image.
        images = torch.cat([torch.full_like(pred_idx, image)
                            for image, (pred_idx, _) in enumerate(indices)])
        preds = mask_logits[images, torch.cat([pred_idx for pred_idx, _ in indices])]
        if preds.shape[0] == 0:
            # No segment in the whole batch: zero loss that still reaches every mask logit.
            zero = mask_logits.sum() * 0.0
            return zero, zero
        fn = self.functions
        mask_term, dice_term = self.terms.mask or MaskTerm(0.0), self.terms.dice or MaskTerm(0.0)
        options = dict(alpha=mask_term.alpha, gamma=mask_term.gamma, eps=dice_term.eps)
        if self.num_points is None:
            targets, valid = self._full_size_targets(gt_masks, gt_valid, indices, shared)
            focal, dice = fn.sigmoid_focal_dice_loss(preds, targets, valid=valid, **options)
        else:
            valid = None if gt_valid is None else _matched_valid(gt_valid, indices)
            points = fn.sample_uncertain_points(preds, self.num_points, self.oversample_ratio,
                                                self.importance_sample_ratio, generator)
            with torch.no_grad():
                targets = self._sample_matched_targets(gt_masks, indices, points)
                if valid is not None:  # each point weighted by its sampled validity
                    valid = sampled_validity(fn, valid[:, None], points)[:, 0]
            # The weights with which the two terms enter the total: the fused op keeps for
            # backward one gradient map per mask, computed for them.
            focal, dice = fn.point_sampled_focal_dice_loss(
                preds, points, targets, valid=valid, weights=(mask_term.weight, dice_term.weight),
                **options)
        return focal.sum() / num_masks, dice.sum() / num_masks

    @staticmethod
    def _full_size_targets(gt_masks, gt_valid, indices, shared):
        """Matched masks and valid maps for pairs in ground-truth order: ``shared`` when every
        mask is matched, else copies of the matched ones."""
        if shared is not None and all(
                len(gt_idx) == len(masks) for masks, (_, gt_idx) in zip(gt_masks, indices)):
            return shared
        targets = torch.cat([gt_masks[image][gt_idx] for image, (_, gt_idx) in enumerate(indices)])
        return targets, None if gt_valid is None else _matched_valid(gt_valid, indices)

    def _sample_matched_targets(self, gt_masks: Sequence[torch.Tensor],
                                indices: List[Tuple[torch.Tensor, torch.Tensor]],
                                points: torch.Tensor) -> torch.Tensor:
        """(N, P) samples of the matched ground-truth masks at their predictions' points.

        Each image's masks are sampled where they lie, bool / uint8 ones without a float copy,
        rather than first gathered into an (N, H, W) copy of the matched masks.
        """
        samples, offset = [], 0
        for masks, (_, gt_idx) in zip(gt_masks, indices):
            if len(gt_idx) == 0:
                continue
            matched_points = points[offset:offset + len(gt_idx)]
            offset += len(gt_idx)
            # A matching uses each target at most once: give every target its prediction's points.
            target_points = matched_points.new_zeros((masks.shape[0], ) + matched_points.shape[1:])
            target_points[gt_idx] = matched_points
            samples.append(self.functions.point_sample(masks[:, None], target_points)[gt_idx, 0])
        return torch.cat(samples)

    def _valid_maps(self, gt_valid, gt_masks) -> Optional[Sequence[torch.Tensor]]:
        """``gt_valid`` checked, with ``ignore_mode='exclude'``; None with ``'negative'``."""
        if self.ignore_mode == 'negative':
            return None
        if gt_valid is None:
            raise ValueError("ignore_mode='exclude' needs gt_valid, the (H, W) bool maps of the "
                             'pixels that are not ignored, one per image')
        if len(gt_valid) != len(gt_masks):
            raise ValueError(f'got {len(gt_valid)} valid maps for {len(gt_masks)} images')
        for image, (valid, masks) in enumerate(zip(gt_valid, gt_masks)):
            if valid.dtype != torch.bool or valid.shape != masks.shape[-2:]:
                raise ValueError(f'image {image}: the valid map must be a bool tensor of the '
                                 f'masks\' size {tuple(masks.shape[-2:])}, got {valid.dtype} '
                                 f'{tuple(valid.shape)}')
        return gt_valid

    def _check_inputs(self, all_cls_logits, all_mask_logits, gt_labels, gt_masks) -> None:
        if len(all_cls_logits) != len(all_mask_logits) or len(all_cls_logits) == 0:
            raise ValueError(f'got {len(all_cls_logits)} class-logit and {len(all_mask_logits)} '
                             'mask-logit layers; both must be the same positive number')
        cls_logits, mask_logits = all_cls_logits[-1], all_mask_logits[-1]
        if cls_logits.dim() != 3 or cls_logits.shape[-1] != self.num_classes + 1:
            raise ValueError(f'class logits must have shape (B, Q, {self.num_classes + 1}), got '
                             f'{tuple(cls_logits.shape)}')
        if mask_logits.dim() != 4 or mask_logits.shape[:2] != cls_logits.shape[:2]:
            raise ValueError(f'mask logits must have shape (B, Q, h, w) with (B, Q) = '
                             f'{tuple(cls_logits.shape[:2])}, got {tuple(mask_logits.shape)}')
        for image, (labels, masks) in enumerate(zip(gt_labels, gt_masks)):
            if labels.dim() != 1 or masks.dim() != 3 or masks.shape[0] != labels.shape[0]:
                raise ValueError(f'image {image}: expected (M,) labels and (M, H, W) masks, got '
                                 f'{tuple(labels.shape)} and {tuple(masks.shape)}')
            if masks.shape[-2:] != gt_masks[0].shape[-2:]:
                raise ValueError(f'all ground-truth masks of a batch must share the padded input '
                                 f'size; image 0 has {tuple(gt_masks[0].shape[-2:])}, image {image} '
                                 f'has {tuple(masks.shape[-2:])}')
        all_labels = torch.cat([labels.reshape(-1) for labels in gt_labels])
        out_of_range = all_labels[(all_labels < 0) | (all_labels >= self.num_classes)]
        if out_of_range.numel():
            raise ValueError(f'label {int(out_of_range[0])} out of range for {self.num_classes} '
                             f'classes (ids 0..{self.num_classes - 1})')
