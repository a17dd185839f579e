import pytest
import torch
from scipy.optimize import linear_sum_assignment
from transformers.models.maskformer.modeling_maskformer import MaskFormerHungarianMatcher

from mmseg_maskformer.core import (HungarianMatcher, NonFiniteCostError, classification_cost,
                                   hungarian_assignment)


def random_batch(batch=2, queries=8, classes=5, low=(6, 7), high=(24, 28), segments=(3, 0)):
    cls_logits = torch.randn(batch, queries, classes + 1)
    mask_logits = torch.randn(batch, queries, *low) * 3
    labels = [torch.randperm(classes)[:m] for m in segments]
    masks = [torch.rand(m, *high) > 0.6 for m in segments]
    return cls_logits, mask_logits, labels, masks


def test_classification_cost_hand_case():
    cls_logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.8, 0.1]]))
    cost = classification_cost(cls_logits, torch.tensor([1, 0]))
    torch.testing.assert_close(cost, -torch.tensor([[0.3, 0.5], [0.8, 0.1]]))


def test_hungarian_assignment_matches_scipy_per_matrix():
    costs = [torch.rand(6, 4), torch.rand(5, 0), torch.rand(3, 3)]
    for cost, (rows, cols) in zip(costs, hungarian_assignment(costs)):
        expected_rows, expected_cols = linear_sum_assignment(cost.numpy())
        assert rows.tolist() == expected_rows.tolist()
        assert cols.tolist() == expected_cols.tolist()


def test_hungarian_assignment_reports_non_finite_matrix():
    costs = [torch.rand(3, 2), torch.tensor([[float('nan'), 1.0]])]
    with pytest.raises(NonFiniteCostError) as info:
        hungarian_assignment(costs)
    assert info.value.index == 1


def test_matcher_equals_transformers_matcher():
    cls_logits, mask_logits, labels, masks = random_batch(segments=(4, 2))
    ours = HungarianMatcher(loss_impl='reference')(  # the official costs 1, 20, 1
        cls_logits, mask_logits, labels, masks)
    hf = MaskFormerHungarianMatcher(cost_class=1.0, cost_mask=20.0, cost_dice=1.0)(
        mask_logits, cls_logits, [m.float() for m in masks], labels)
    for (rows, cols), (hf_rows, hf_cols) in zip(ours, hf):
        assert rows.tolist() == hf_rows.tolist()
        assert cols.tolist() == hf_cols.tolist()


def test_matcher_handles_images_without_segments():
    cls_logits, mask_logits, labels, masks = random_batch(segments=(3, 0))
    (rows0, cols0), (rows1, cols1) = HungarianMatcher(loss_impl='reference')(
        cls_logits, mask_logits, labels, masks)
    assert len(rows0) == 3 and sorted(cols0.tolist()) == [0, 1, 2]
    assert rows1.numel() == 0 and cols1.numel() == 0


def test_match_layers_equals_per_layer_calls():
    cls_logits, mask_logits, labels, masks = random_batch(segments=(4, 2))
    layers_cls = [cls_logits, cls_logits.flip(1)]
    layers_masks = [mask_logits, mask_logits.flip(1)]
    matcher = HungarianMatcher(loss_impl='reference')
    together = matcher.match_layers(layers_cls, layers_masks, labels, masks)
    for layer in range(2):
        alone = matcher(layers_cls[layer], layers_masks[layer], labels, masks)
        for (r, c), (r2, c2) in zip(together[layer], alone):
            assert r.tolist() == r2.tolist() and c.tolist() == c2.tolist()


def test_point_sampled_layers_share_the_image_points():
    """Each image draws its points once for all layers: every layer's costs equal a one-layer
    call with the same generator state."""
    cls_logits, mask_logits, labels, masks = random_batch(segments=(4, 3))
    matcher = HungarianMatcher(loss_impl='reference', num_points=40)
    layers = [(cls_logits, mask_logits), (cls_logits.flip(1), mask_logits.flip(1) * 2)]
    together = matcher.layer_cost_terms([c[0] for c, _ in layers], [m[0] for _, m in layers],
                                        labels[0], masks[0], torch.Generator().manual_seed(4))
    for (cls, mask), terms in zip(layers, together):
        alone = matcher.cost_terms(cls[0], mask[0], labels[0], masks[0],
                                   torch.Generator().manual_seed(4))
        for got, expected in zip(terms, alone):
            torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_matcher_names_nan_mask_logits():
    cls_logits, mask_logits, labels, masks = random_batch(segments=(2, 3))
    mask_logits[1, 0, 0, 0] = float('nan')
    with pytest.raises(FloatingPointError, match='mask logits of image 1 contain 1 NaN'):
        HungarianMatcher(loss_impl='reference')(cls_logits, mask_logits, labels, masks)


def test_matcher_names_infinite_class_logits():
    cls_logits, mask_logits, labels, masks = random_batch(segments=(2, 3))
    cls_logits[0, 2, 1] = float('inf')
    with pytest.raises(FloatingPointError, match="cost 'class' of image 0.*class logits"):
        HungarianMatcher(loss_impl='reference')(cls_logits, mask_logits, labels, masks)


def test_point_sampled_matcher_uses_shared_points():
    cls_logits, mask_logits, labels, masks = random_batch(segments=(3, 2))
    matcher = HungarianMatcher(loss_impl='reference', num_points=64)
    generator = torch.Generator().manual_seed(3)
    _, focal, dice = matcher.cost_terms(cls_logits[0], mask_logits[0], labels[0], masks[0], generator)
    # Recompute by hand with the same random points.
    points = torch.rand(1, 64, 2, generator=torch.Generator().manual_seed(3))
    grid = 2 * points[:, :, None] - 1
    x = torch.nn.functional.grid_sample(mask_logits[0][None], grid, align_corners=False)[0, :, :, 0]
    t = torch.nn.functional.grid_sample(masks[0][None].float(), grid, align_corners=False)[0, :, :, 0]
    p = x.sigmoid()
    pos = 0.25 * (1 - p)**2 * torch.nn.functional.softplus(-x)
    neg = 0.75 * p**2 * torch.nn.functional.softplus(x)
    torch.testing.assert_close(focal, (pos @ t.T + neg @ (1 - t).T) / 64)
    expected_dice = 1 - (2 * p @ t.T + 1) / (p.sum(1)[:, None] + t.sum(1)[None] + 1)
    torch.testing.assert_close(dice, expected_dice)


def test_matcher_rejects_all_zero_weights():
    with pytest.raises(ValueError, match='non-zero'):
        HungarianMatcher([dict(type='ClassificationCost', weight=0),
                          dict(type='FocalLossCost', weight=0), dict(type='DiceCost', weight=0)])


def test_all_layers_and_images_reach_the_host_in_one_transfer(monkeypatch):
    cls_logits, mask_logits, labels, masks = random_batch(segments=(4, 2))
    transfers = []
    original_cpu = torch.Tensor.cpu

    def counting_cpu(self, *args, **kwargs):
        transfers.append(tuple(self.shape))
        return original_cpu(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, 'cpu', counting_cpu)
    HungarianMatcher(loss_impl='reference').match_layers(
        [cls_logits] * 3, [mask_logits] * 3, labels, masks)
    # 3 layers × (8×4 + 8×2) costs, concatenated: one transfer.
    assert transfers == [(3 * (8 * 4 + 8 * 2), )]
