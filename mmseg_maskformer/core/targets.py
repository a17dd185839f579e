"""Ground-truth conversion: semantic label maps to per-segment binary masks."""
from typing import List, Sequence, Tuple

import torch


def semantic_to_segments(sem_seg: torch.Tensor, num_classes: int,
                         ignore_index: int = 255) -> Tuple[torch.Tensor, torch.Tensor]:
    """One segment per class present in ``sem_seg``, as the official semantic mapper builds them.

    Args:
        sem_seg: (H, W) or (1, H, W) integer label map; ``ignore_index`` marks pixels (ignored
            regions and padding) that belong to no segment, i.e. are negative in every mask.
        num_classes: K; labels must lie in [0, K) apart from ``ignore_index``.

    Returns:
        ``(labels, masks)``: (M,) int64 class ids in increasing order and (M, H, W) bool masks.
    """
    if sem_seg.dim() == 3 and sem_seg.shape[0] == 1:
        sem_seg = sem_seg[0]
    if sem_seg.dim() != 2:
        raise ValueError(f'sem_seg must have shape (H, W) or (1, H, W), got {tuple(sem_seg.shape)}')
    if sem_seg.is_floating_point() or sem_seg.dtype == torch.bool:
        raise TypeError(f'sem_seg must hold integer class ids, got {sem_seg.dtype}')
    values = torch.unique(sem_seg)
    labels = values[values != ignore_index].long()
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.numel() > 0:
        raise ValueError(f'label {int(bad[0])} out of range: the head has {num_classes} classes '
                         f'(ids 0..{num_classes - 1}) and ignore_index={ignore_index}')
    masks = sem_seg[None] == labels[:, None, None]
    return labels, masks


def pack_masks(masks: Sequence[torch.Tensor]) -> List[torch.Tensor]:
    """The images' (M_b, H, W) masks as consecutive views of one contiguous buffer.

    :func:`concatenated` then returns that buffer without a copy: the exact losses of every
    decoder layer save it for backward, so the ground truth is held once instead of twice.
    """
    if len(masks) == 0:
        return []
    return list(torch.cat(list(masks)).split([len(m) for m in masks]))


def concatenated(masks: Sequence[torch.Tensor]) -> torch.Tensor:
    """``torch.cat(masks)``: a view when the masks are consecutive pieces of one contiguous
    tensor (as :func:`pack_masks` makes them), else a copy."""
    first = masks[0]
    offset = first.storage_offset()
    for piece in masks:
        if (not piece.is_contiguous() or piece.dtype != first.dtype or
                piece.shape[1:] != first.shape[1:] or piece.device != first.device or
                piece.untyped_storage().data_ptr() != first.untyped_storage().data_ptr() or
                piece.storage_offset() != offset):
            return torch.cat(list(masks))
        offset += piece.numel()
    size = (sum(len(piece) for piece in masks), ) + tuple(first.shape[1:])
    return first.as_strided(size, first.stride(), first.storage_offset())
