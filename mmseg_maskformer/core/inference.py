"""Turning (class, mask) pairs into segmentation maps (official inference rules)."""
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch


def semantic_inference(cls_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """Soft semantic scores ``Σ_q p_q(c)·σ(m_q)``.

    Args:
        cls_logits: (..., Q, K+1) class logits, ∅ last.
        mask_logits: (..., Q, H, W) mask logits.

    Returns:
        (..., K, H, W) scores; their argmax over K is the semantic map.
    """
    probs = cls_logits.float().softmax(-1)[..., :-1]
    return torch.einsum('...qc,...qhw->...chw', probs, mask_logits.float().sigmoid())


def panoptic_inference(cls_logits: Union[torch.Tensor, np.ndarray],
                       mask_logits: Union[torch.Tensor, np.ndarray],
                       object_mask_threshold: float = 0.8,
                       overlap_threshold: float = 0.8,
                       thing_classes: Optional[Iterable[int]] = None
                       ) -> Tuple[Union[torch.Tensor, np.ndarray], List[Dict[str, Any]]]:
    """Official MaskFormer panoptic inference for one image.

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
    num_classes = cls_logits.shape[1] - 1
    things = set() if thing_classes is None else {int(c) for c in thing_classes}
    scores, labels = cls_logits.float().softmax(-1).max(-1)
    keep = (labels != num_classes) & (scores > object_mask_threshold)
    scores, labels = scores[keep], labels[keep]
    mask_probs = mask_logits[keep].float().sigmoid()
    panoptic_seg = torch.zeros(mask_logits.shape[-2:], dtype=torch.long, device=mask_logits.device)
    if labels.numel() == 0:
        return panoptic_seg, []

    owner = (scores[:, None, None] * mask_probs).argmax(0)
    assigned_areas = torch.bincount(owner.flatten(), minlength=labels.numel()).tolist()
    original_areas = (mask_probs >= 0.5).flatten(1).sum(1).tolist()
    segments: List[Dict[str, Any]] = []
    stuff_segment = {}
    for query, category in enumerate(labels.tolist()):
        assigned, original = assigned_areas[query], original_areas[query]
        if assigned == 0 or original == 0 or assigned / original < overlap_threshold:
            continue
        isthing = category in things
        if not isthing and category in stuff_segment:
            segment_id = stuff_segment[category]
        else:
            segment_id = len(segments) + 1
            segments.append(dict(id=segment_id, category_id=category, isthing=isthing))
            if not isthing:
                stuff_segment[category] = segment_id
        panoptic_seg[owner == query] = segment_id
    areas = torch.bincount(panoptic_seg.flatten(), minlength=len(segments) + 1).tolist()
    for segment in segments:
        segment['area'] = areas[segment['id']]
    return panoptic_seg, segments
