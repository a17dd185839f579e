"""Ground-truth conversion: semantic label maps to per-segment binary masks."""
from typing import Tuple

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
