"""Pure-PyTorch references of the ops in :mod:`mmseg_maskformer.ops`.

They follow the official MaskFormer / Mask2Former formulas literally (full-resolution
intermediate tensors, autograd for backward) and have the same signatures as the compiled ops,
which must match them. They are also the ``loss_impl='reference'`` path of the criterion.
All arithmetic is float32 (float64 inputs stay float64, for gradcheck).
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from ._validation import (check_class_and_mask_logits, check_cost_inputs, check_geometry,
                          check_loss_inputs, check_panoptic_inputs, check_point_loss_inputs,
                          check_point_sample_inputs, check_sample_uncertain_inputs,
                          check_select_uncertain_inputs, check_size,
                          point_sample_dtype)


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def sigmoid_focal_dice_loss(mask_logits: torch.Tensor,
                            targets: torch.Tensor,
                            alpha: float = 0.25,
                            gamma: float = 2.0,
                            eps: float = 1.0,
                            valid: Optional[torch.Tensor] = None
                            ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-mask sigmoid focal loss (mean over pixels) and dice loss.

    Args:
        mask_logits: (N, h, w) logits, upsampled bilinearly (align_corners=False) to the
            target size when it differs; or (N, K) point logits.
        targets: (N, H, W) or (N, K) masks in [0, 1] (bool, uint8 or float; soft allowed).
        alpha: focal class-balance weight; a negative value disables it.
        gamma: focal exponent.
        eps: dice smoothing added to numerator and denominator.
        valid: None (every pixel counts, the official loss), or the pixels that count, of the
            targets' shape: bool, or floating weights in [0, 1] (point-sampled validity). Each
            pixel's terms are weighted by it: the focal loss is the weighted sum over
            max(sum of the weights, 1), and the dice sums run over the weighted pixels only.

    Returns:
        ``(focal, dice)``, each (N,) in float32 (float64 for float64 logits).
    """
    check_loss_inputs(mask_logits, targets, alpha, gamma, eps, valid)
    dtype = _compute_dtype(mask_logits)
    x = mask_logits.to(dtype)
    t = targets.to(dtype)
    if x.dim() == 3 and x.shape[-2:] != t.shape[-2:]:
        x = F.interpolate(x[:, None], size=t.shape[-2:], mode='bilinear', align_corners=False)[:, 0]
    x = x.flatten(1)
    t = t.flatten(1)
    p = x.sigmoid()
    ce = F.binary_cross_entropy_with_logits(x, t, reduction='none')
    p_t = p * t + (1 - p) * (1 - t)
    focal = ce * (1 - p_t)**gamma
    if alpha >= 0:
        focal = (alpha * t + (1 - alpha) * (1 - t)) * focal
    if valid is None:
        dice = 1 - (2 * (p * t).sum(1) + eps) / (p.sum(1) + t.sum(1) + eps)
        return focal.mean(1), dice
    w = valid.to(dtype).flatten(1)
    dice = 1 - (2 * (p * t * w).sum(1) + eps) / ((p * w).sum(1) + (t * w).sum(1) + eps)
    return (focal * w).sum(1) / w.sum(1).clamp(min=1), dice


def pairwise_mask_costs(mask_logits: torch.Tensor,
                        targets: torch.Tensor,
                        alpha: float = 0.25,
                        gamma: float = 2.0,
                        eps: float = 1.0,
                        valid: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Focal and dice matching costs between every prediction and every target.

    Args:
        mask_logits: (Q, h, w) logits or (Q, K) point logits.
        targets: (M, H, W) masks, nearest-downsampled to (h, w) as the official matcher
            does; or (M, K) point targets.
        valid: None (every pixel counts, the official costs), or the pixels that count, shared
            by all targets: (H, W), nearest-downsampled with the targets, or (K,); bool, or
            floating weights in [0, 1]. The focal cost is then the weighted sum over max(sum of
            the weights, 1), and the dice sums run over the weighted pixels only.

    Returns:
        ``(focal_cost, dice_cost)``, each (Q, M) float32: the focal loss of prediction q
        against target m averaged over the K pixels, and its dice loss.
    """
    check_cost_inputs(mask_logits, targets, alpha, gamma, eps, valid)
    dtype = _compute_dtype(mask_logits)
    x = mask_logits.to(dtype)
    t = targets.to(dtype)
    w = None if valid is None else valid.to(dtype)
    if x.dim() == 3 and x.shape[-2:] != t.shape[-2:]:
        t = F.interpolate(t[:, None], size=x.shape[-2:], mode='nearest')[:, 0]
        if w is not None:
            w = F.interpolate(w[None, None], size=x.shape[-2:], mode='nearest')[0, 0]
    x = x.flatten(1)
    t = t.flatten(1)
    p = x.sigmoid()
    pos = (1 - p)**gamma * F.softplus(-x)
    neg = p**gamma * F.softplus(x)
    if alpha >= 0:
        pos = alpha * pos
        neg = (1 - alpha) * neg
    if w is None:
        focal_cost = (pos @ t.T + neg @ (1 - t).T) / x.shape[1]
        dice_cost = 1 - (2 * (p @ t.T) + eps) / (p.sum(1)[:, None] + t.sum(1)[None, :] + eps)
        return focal_cost, dice_cost
    w = w.flatten()
    focal_cost = ((pos * w) @ t.T + (neg * w) @ (1 - t).T) / w.sum().clamp(min=1)
    dice_cost = 1 - (2 * ((p * w) @ t.T) + eps) / (
        (p * w).sum(1)[:, None] + (t * w).sum(1)[None, :] + eps)
    return focal_cost, dice_cost


def point_sample(inputs: torch.Tensor, points: torch.Tensor,
                 align_corners: bool = False) -> torch.Tensor:
    """Bilinear samples of ``inputs`` (N, C, H, W) at ``points`` (N, P, 2), (x, y) in [0, 1].

    ``mmcv.ops.point_sample`` / ``F.grid_sample`` semantics with zero padding. ``inputs`` may
    also be bool or uint8 (e.g. ground-truth masks, sampled without a float copy by the compiled
    op). Returns (N, C, P) in the dtype of floating ``inputs``, else float32.
    """
    check_point_sample_inputs(inputs, points)
    dtype = _compute_dtype(inputs)
    grid = 2 * points.to(dtype)[:, :, None, :] - 1
    out = F.grid_sample(inputs.to(dtype), grid, mode='bilinear', padding_mode='zeros',
                        align_corners=align_corners)
    return out[..., 0].to(point_sample_dtype(inputs))


def point_sampled_focal_dice_loss(mask_logits: torch.Tensor,
                                  points: torch.Tensor,
                                  targets: torch.Tensor,
                                  alpha: float = 0.25,
                                  gamma: float = 2.0,
                                  eps: float = 1.0,
                                  valid: Optional[torch.Tensor] = None,
                                  weights: Tuple[float, float] = (1.0, 1.0)
                                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-mask focal and dice losses of (N, h, w) logits sampled at (N, P, 2) points, against
    (N, P) targets: :func:`sigmoid_focal_dice_loss` of :func:`point_sample` (Mask2Former's
    point-sampled mask losses). ``weights`` (of the focal and the dice loss in the total) change
    nothing here; the compiled op needs them for its backward."""
    check_point_loss_inputs(mask_logits, points, targets, alpha, gamma, eps, valid, weights)
    logits = point_sample(mask_logits[:, None], points)[:, 0]
    return sigmoid_focal_dice_loss(logits, targets, alpha, gamma, eps, valid)


def sample_uncertain_points(mask_logits: torch.Tensor,
                            num_points: int,
                            oversample_ratio: float = 3.0,
                            importance_sample_ratio: float = 0.75,
                            generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Mask2Former's importance sampling of (x, y) points in [0, 1]² per mask (official
    ``get_uncertain_point_coords_with_randomness``).

    Draws ``int(num_points * oversample_ratio)`` uniform candidates, keeps the
    ``int(importance_sample_ratio * num_points)`` with the least certain logits (highest
    ``-|logit|``, :func:`select_uncertain_points`) and adds uniform points for the rest.
    The uniform numbers come from Philox4x32-10 (:func:`uniform_points`) under one seed drawn
    from ``generator`` (torch's default generator of the logits' device when None), so that the
    compiled op draws the same points on all its threads; they are as uniform as the official
    ``torch.rand`` draws, but not the same numbers.

    Args:
        mask_logits: (N, h, w) logits.

    Returns:
        (N, num_points, 2) float32 points: the uncertain ones first, in no particular order.
    """
    num_candidates, num_uncertain = check_sample_uncertain_inputs(
        mask_logits, num_points, oversample_ratio, importance_sample_ratio)
    seed = draw_seed(mask_logits.device, generator)
    num_masks = mask_logits.shape[0]
    points = uniform_points(seed, num_masks, num_points - num_uncertain, RANDOM_POINT_STREAM)
    if num_uncertain > 0:
        candidates = uniform_points(seed, num_masks, num_candidates, CANDIDATE_STREAM)
        with torch.no_grad():
            candidate_logits = point_sample(mask_logits.detach()[:, None], candidates)[:, 0]
        uncertain = select_uncertain_points(candidate_logits, candidates, num_uncertain)
        points = torch.cat([uncertain, points], dim=1)
    return points


def select_uncertain_points(candidate_logits: torch.Tensor, candidates: torch.Tensor,
                            num_uncertain: int) -> torch.Tensor:
    """The ``num_uncertain`` candidates of each mask with the least certain logits.

    Args:
        candidate_logits: (N, C) logits at the candidates.
        candidates: (N, C, 2) points.
        num_uncertain: how many to keep per mask.

    Returns:
        (N, num_uncertain, 2): the candidates with the highest ``-|logit|`` (NaN counts as
        highest), as Mask2Former's ``topk``, in no particular order (losses average over
        points).
    """
    check_select_uncertain_inputs(candidate_logits, candidates, num_uncertain)
    # The same set as Mask2Former's sorted topk; leaving it unsorted halves the cost of the topk.
    index = torch.topk(-candidate_logits.abs(), k=num_uncertain, dim=1, sorted=False).indices
    return torch.gather(candidates, 1, index[..., None].expand(-1, -1, 2))


def draw_seed(device: torch.device, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """A 0-dim int64 seed in [0, 2^63) on ``device``, from ``generator`` (torch's default
    generator of the device when None): one draw per call, so that ``torch.manual_seed`` and a
    restored generator state reproduce the points, without a host sync on a GPU."""
    return torch.randint(0, 2**63 - 1, (), dtype=torch.int64, device=device, generator=generator)


# Philox4x32-10 (Salmon, Moraes, Dror and Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3",
# SC 2011), written with int64 tensors holding uint32 words; csrc/ops/philox.h is the compiled twin.
PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
CANDIDATE_STREAM, RANDOM_POINT_STREAM = 0, 1
_LOW32 = 0xFFFFFFFF


def _mulhilo32(a: torch.Tensor, m: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Low and high words of a * m for uint32 a (int64 tensor) and m, without int64 overflow:
    a is split into 16-bit halves, each product then stays below 2^48."""
    low_product = (a & 0xFFFF) * m
    high_product = (a >> 16) * m
    middle = low_product + ((high_product & 0xFFFF) << 16)
    return middle & _LOW32, ((high_product >> 16) + (middle >> 32)) & _LOW32


def philox4x32_10(counter: torch.Tensor, key: Sequence) -> torch.Tensor:
    """Philox4x32-10 of (..., 4) int64 counters holding uint32 words under the key (k0, k1)
    (ints or int64 tensors that broadcast with a counter word); returns (..., 4) words."""
    c0, c1, c2, c3 = counter.unbind(-1)
    k0, k1 = key
    for _ in range(10):
        lo0, hi0 = _mulhilo32(c0, PHILOX_M[0])
        lo1, hi1 = _mulhilo32(c2, PHILOX_M[1])
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + PHILOX_W[0]) & _LOW32, (k1 + PHILOX_W[1]) & _LOW32
    return torch.stack([c0, c1, c2, c3], -1)


def uniform_points(seed: torch.Tensor, num_masks: int, num_points: int,
                   stream: int) -> torch.Tensor:
    """(num_masks, num_points, 2) float32 points in [0, 1)² of a Philox stream: words 2p (x)
    and 2p + 1 (y) of mask n are word j % 4 of Philox4x32-10 of the counter (j // 4, n, stream, 0)
    under the key (low, high 32 bits of the 0-dim int64 ``seed``), each turned into a float
    from its 24 high bits."""
    device = seed.device
    num_counters = (2 * num_points + 3) // 4
    block = torch.arange(num_counters, dtype=torch.int64, device=device)
    key = (seed & _LOW32, (seed >> 32) & _LOW32)
    chunks = []
    # Masks a few at a time: the int64 words and their temporaries are 40 bytes per point.
    for first in range(0, num_masks, 16):
        masks = torch.arange(first, min(first + 16, num_masks), dtype=torch.int64, device=device)
        counter = torch.zeros(len(masks), num_counters, 4, dtype=torch.int64, device=device)
        counter[..., 0] = block
        counter[..., 1] = masks[:, None]
        counter[..., 2] = stream
        words = philox4x32_10(counter, key).flatten(1)[:, :2 * num_points]
        chunks.append((words >> 8).float() * 2.0**-24)
    if not chunks:
        return torch.empty(0, num_points, 2, device=device)
    return torch.cat(chunks).view(num_masks, num_points, 2)


def _resize(x: torch.Tensor, size: Sequence[int], align_corners: bool = False) -> torch.Tensor:
    """``F.interpolate`` bilinear of (B, C, h, w), skipped when the size is already right (where
    it would copy)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode='bilinear', align_corners=align_corners)


def _crop_flip_resize(x: torch.Tensor, crop: Tuple[int, int, int, int], flip: Tuple[bool, bool],
                      output_size: Tuple[int, int], align_corners: bool) -> torch.Tensor:
    """mmseg's ``postprocess_result`` on (1, C, H, W): batch padding cropped, flip undone,
    bilinear resize to the original size."""
    top, left, height, width = crop
    x = x[:, :, top:top + height, left:left + width]
    if flip[0]:
        x = x.flip(-1)
    if flip[1]:
        x = x.flip(-2)
    return _resize(x, output_size, align_corners)


def semantic_scores(cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                    size: Sequence[int]) -> torch.Tensor:
    """MaskFormer's semantic scores ``Σ_q softmax(cls_q)[c] · σ(up(m_q))`` (the paper's §3.4).

    Args:
        cls_logits: (B, Q, K+1) class logits, ∅ last.
        mask_logits: (B, Q, h, w) mask logits.
        size: (H, W) to which the mask logits are upsampled (bilinear, align_corners=False)
            before the sigmoid: the network-input size.

    Returns:
        (B, K, H, W) scores in float32 (float64 for float64 mask logits).
    """
    check_class_and_mask_logits(cls_logits, mask_logits, batched=True)
    size = check_size('size', size)
    masks = _resize(mask_logits.to(_compute_dtype(mask_logits)), size)
    return semantic_inference(cls_logits, masks)


def semantic_inference(cls_logits: torch.Tensor, mask_logits: torch.Tensor) -> torch.Tensor:
    """The soft semantic sum ``Σ_q p_q(c)·σ(m_q)`` at the size of the given mask logits, without
    argument checks (ONNX export traces it with symbolic sizes).

    Args:
        cls_logits: (..., Q, K+1) class logits, ∅ last.
        mask_logits: (..., Q, H, W) mask logits.

    Returns:
        (..., K, H, W) scores (float32; float64 for float64 mask logits); their arg-max over K is
        the semantic map.
    """
    dtype = _compute_dtype(mask_logits)
    probs = cls_logits.to(dtype).softmax(-1)[..., :-1]
    return torch.einsum('...qc,...qhw->...chw', probs, mask_logits.to(dtype).sigmoid())


def semantic_labels(cls_logits: torch.Tensor,
                    mask_logits: torch.Tensor,
                    input_size: Sequence[int],
                    output_size: Sequence[int],
                    crop: Optional[Sequence[int]] = None,
                    flip: Optional[str] = None,
                    align_corners: bool = False,
                    return_scores: bool = False
                    ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """The semantic map of one image: :func:`semantic_scores` at the network-input size, then
    mmseg's ``postprocess_result`` (batch padding cropped, flip undone, bilinear resize to the
    original size) and the arg-max over classes.

    Args:
        cls_logits: (Q, K+1) class logits, ∅ last.
        mask_logits: (Q, h, w) mask logits.
        input_size: (H, W) of the network input, the grid the scores are computed on.
        output_size: (H, W) of the original image.
        crop: (top, left, height, width) of the image in the input grid (batch padding
            removed); None for the whole grid.
        flip: None, ``'horizontal'`` or ``'vertical'``: the test-time flip to undo.
        align_corners: of the final resize (the segmentor's ``align_corners``).
        return_scores: also return the winning score of each pixel.

    Returns:
        (H, W) int64 labels; equal maxima give the lowest class, as ``torch.argmax``. With
        ``return_scores``, also their (H, W) scores (float32, float64 for float64 logits).
    """
    check_class_and_mask_logits(cls_logits, mask_logits, batched=False)
    input_size, output_size, crop, flips = check_geometry(input_size, output_size, crop, flip)
    scores = semantic_scores(cls_logits[None], mask_logits[None], input_size)
    scores = _crop_flip_resize(scores, crop, flips, output_size, align_corners)[0]
    best, labels = scores.max(0)
    return (labels, best) if return_scores else labels


def panoptic_assignment(mask_logits: torch.Tensor,
                        scores: torch.Tensor,
                        input_size: Sequence[int],
                        output_size: Sequence[int],
                        crop: Optional[Sequence[int]] = None,
                        flip: Optional[str] = None,
                        align_corners: bool = False
                        ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Which kept query owns each pixel, in the official panoptic order: the mask logits
    upsampled to the network-input size, cropped, flipped back and resized to the original size,
    then ``argmax_q score_q · σ(m_q)``.

    Args:
        mask_logits: (Q, h, w) mask logits of the kept queries (Q >= 1).
        scores: (Q,) their class scores.
        input_size, output_size, crop, flip, align_corners: as :func:`semantic_labels`.

    Returns:
        ``(owner, won, area)``: the (H, W) int64 index of the winning query (the first of equal
        maxima, as ``torch.argmax``), the (Q,) int64 number of pixels each wins and the (Q,)
        int64 number of pixels where its ``σ(m_q) >= 0.5``: what the overlap filter compares.
    """
    check_panoptic_inputs(mask_logits, scores)
    input_size, output_size, crop, flips = check_geometry(input_size, output_size, crop, flip)
    dtype = _compute_dtype(mask_logits)
    logits = _resize(mask_logits.to(dtype)[None], input_size)
    probs = _crop_flip_resize(logits, crop, flips, output_size, align_corners)[0].sigmoid()
    owner = (scores.to(dtype)[:, None, None] * probs).argmax(0)
    won = torch.bincount(owner.flatten(), minlength=probs.shape[0])
    area = (probs >= 0.5).flatten(1).sum(1)
    return owner, won, area
