"""Turning (class, mask) pairs into segmentation maps (official inference rules)."""
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..ops.reference import panoptic_assignment, semantic_inference

# (kept mask logits (Q', h, w), their scores (Q',)) -> (owner (H, W), won (Q',), area (Q',)):
# ops.panoptic_assignment with the geometry of one image bound.
PanopticAssigner = Callable[[torch.Tensor, torch.Tensor],
                            Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def panoptic_inference(cls_logits: Union[torch.Tensor, np.ndarray],
                       mask_logits: Union[torch.Tensor, np.ndarray],
                       object_mask_threshold: float = 0.8,
                       overlap_threshold: float = 0.8,
                       thing_classes: Optional[Iterable[int]] = None
                       ) -> Tuple[Union[torch.Tensor, np.ndarray], List[Dict[str, Any]]]:
    """Official MaskFormer panoptic inference for one image, from mask logits at the output size.

    Keeps the queries whose arg-max class is not ∅ and whose score exceeds
    ``object_mask_threshold``; gives each pixel to the kept query with the highest
    ``score·σ(mask)``; drops a query whose pixels cover less than ``overlap_threshold`` of its
    own ``σ(mask) >= 0.5`` area (a false positive hidden behind others); merges the queries of
    one stuff class into one segment.

    Args:
        cls_logits: (Q, K+1) class logits, ∅ last.
        mask_logits: (Q, H, W) mask logits at the output size.
        thing_classes: class ids that have instances; ``None`` treats every class as stuff.

    Tensors or numpy arrays (e.g. the ``--raw`` outputs of an ONNX export run by onnxruntime);
    when either input is a numpy array the map is returned as one.

    Returns:
        ``(panoptic_seg, segments_info)``: an int64 (H, W) map with 0 = void and segment ids
        from 1, and per segment ``{'id', 'category_id', 'isthing', 'area'}`` in id order.
    """
    if isinstance(cls_logits, np.ndarray) or isinstance(mask_logits, np.ndarray):
        panoptic_seg, segments = panoptic_inference(
            torch.as_tensor(cls_logits), torch.as_tensor(mask_logits), object_mask_threshold,
            overlap_threshold, thing_classes)
        return panoptic_seg.numpy(), segments
    if cls_logits.dim() != 2 or mask_logits.dim() != 3 or cls_logits.shape[0] != mask_logits.shape[0]:
        raise ValueError(f'expected (Q, K+1) class logits and (Q, H, W) mask logits, got '
                         f'{tuple(cls_logits.shape)} and {tuple(mask_logits.shape)}')
    size = tuple(mask_logits.shape[-2:])

    def assign(masks, scores):
        return panoptic_assignment(masks, scores, size, size)

    return panoptic_segmentation(cls_logits, mask_logits, assign, size, object_mask_threshold,
                                 overlap_threshold, thing_classes)


def panoptic_segmentation(cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                          assign: PanopticAssigner, output_size: Sequence[int],
                          object_mask_threshold: float = 0.8, overlap_threshold: float = 0.8,
                          thing_classes: Optional[Iterable[int]] = None
                          ) -> Tuple[torch.Tensor, List[Dict[str, Any]]]:
    """:func:`panoptic_inference` with the per-pixel step given: ``assign`` maps the kept queries'
    mask logits, at any resolution, to the owner of each output pixel and the per-query counts
    (:func:`mmseg_maskformer.ops.panoptic_assignment`, fused or reference, with the image's
    crop / flip / resize bound), so that only the small per-query tensors reach the merging.
    """
    num_classes = cls_logits.shape[1] - 1
    scores, labels = cls_logits.float().softmax(-1).max(-1)
    keep = (labels != num_classes) & (scores > object_mask_threshold)
    scores, labels = scores[keep], labels[keep]
    if labels.numel() == 0:
        return torch.zeros(tuple(output_size), dtype=torch.long, device=mask_logits.device), []
    owner, won, area = assign(mask_logits[keep], scores)
    return merge_panoptic_segments(labels, owner, won, area, overlap_threshold, thing_classes)


def merge_panoptic_segments(labels: torch.Tensor, owner: torch.Tensor, won: torch.Tensor,
                            area: torch.Tensor, overlap_threshold: float = 0.8,
                            thing_classes: Optional[Iterable[int]] = None
                            ) -> Tuple[torch.Tensor, List[Dict[str, Any]]]:
    """The official overlap filter and stuff merging on per-query counts.

    Args:
        labels: (Q',) classes of the kept queries.
        owner: (H, W) index of the kept query that wins each pixel.
        won: (Q',) pixels each query wins; ``area``: (Q',) pixels where its ``σ(m) >= 0.5``.

    Returns:
        As :func:`panoptic_inference`; a segment's area is the sum of its queries' won pixels.
    """
    things = set() if thing_classes is None else {int(c) for c in thing_classes}
    won, area = won.tolist(), area.tolist()
    segment_of_query = [0] * len(won)  # 0: void (dropped by the overlap filter)
    segments: List[Dict[str, Any]] = []
    stuff_segment: Dict[int, int] = {}
    for query, category in enumerate(labels.tolist()):
        assigned, original = won[query], area[query]
        if assigned == 0 or original == 0 or assigned / original < overlap_threshold:
            continue
        isthing = category in things
        if not isthing and category in stuff_segment:
            segment_id = stuff_segment[category]
        else:
            segment_id = len(segments) + 1
            segments.append(dict(id=segment_id, category_id=category, isthing=isthing, area=0))
            if not isthing:
                stuff_segment[category] = segment_id
        segment_of_query[query] = segment_id
        segments[segment_id - 1]['area'] += assigned
    lookup = torch.tensor(segment_of_query, dtype=torch.long, device=owner.device)
    return lookup[owner], segments


__all__ = [
    'PanopticAssigner', 'merge_panoptic_segments', 'panoptic_inference', 'panoptic_segmentation',
    'semantic_inference'
]
