"""ignore_mode='exclude': ignored pixels count in no mask loss and no matching cost.

Oracle: when the valid pixels are the top rows of the image, excluding the others equals
cropping them away, which transformers' matcher and loss helpers compute on their own.
"""
import pytest
import torch
import torch.nn.functional as F
from transformers.models.maskformer.modeling_maskformer import (MaskFormerHungarianMatcher,
                                                                dice_loss, sigmoid_focal_loss)

from mmseg_maskformer.core import HungarianMatcher, SetCriterion

LOSS_IMPLS = ['reference', pytest.param('fused', marks=pytest.mark.needs_extension)]

NUM_CLASSES = 6
LOW, HIGH, KEPT_ROWS = 8, 32, 16  # the top 16 of 32 rows (4 of 8 logit rows) are valid


def make_matcher(**kwargs):
    return HungarianMatcher(**kwargs)  # the official costs 1, 20, 1


def make_criterion(loss_impl='reference', **kwargs):
    matcher = make_matcher(loss_impl=loss_impl, num_points=kwargs.get('num_points'))
    return SetCriterion(NUM_CLASSES, matcher, loss_impl=loss_impl, **kwargs)


def random_outputs(layers=2, batch=2, queries=10, segments=(3, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    cls_logits = torch.randn(layers, batch, queries, NUM_CLASSES + 1, generator=g)
    mask_logits = 3 * torch.randn(layers, batch, queries, LOW, LOW, generator=g)
    labels = [torch.randperm(NUM_CLASSES, generator=g)[:m] for m in segments]
    masks = [torch.rand(m, HIGH, HIGH, generator=g) > 0.5 for m in segments]
    valid = torch.zeros(HIGH, HIGH, dtype=torch.bool)
    valid[:KEPT_ROWS] = True
    return cls_logits, mask_logits, labels, masks, [valid] * batch


@pytest.mark.parametrize('loss_impl', LOSS_IMPLS)
def test_matcher_exclude_equals_transformers_on_kept_rows(loss_impl):
    cls_logits, mask_logits, labels, masks, valid = random_outputs()
    ours = make_matcher(loss_impl=loss_impl)(cls_logits[-1], mask_logits[-1], labels, masks,
                                             gt_valid=valid)
    hf = MaskFormerHungarianMatcher(cost_class=1.0, cost_mask=20.0, cost_dice=1.0)(
        mask_logits[-1][..., :LOW * KEPT_ROWS // HIGH, :], cls_logits[-1],
        [m[:, :KEPT_ROWS].float() for m in masks], labels)
    for (rows, cols), (hf_rows, hf_cols) in zip(ours, hf):
        assert rows.tolist() == hf_rows.tolist() and cols.tolist() == hf_cols.tolist()
    plain = make_matcher(loss_impl=loss_impl)(cls_logits[-1], mask_logits[-1], labels, masks)
    assert any(not torch.equal(a[1], b[1]) for a, b in zip(ours, plain)), 'valid had no effect'


@pytest.mark.parametrize('loss_impl', LOSS_IMPLS)
def test_criterion_exclude_equals_transformers_on_kept_rows(loss_impl):
    cls_logits, mask_logits, labels, masks, valid = random_outputs()
    criterion = make_criterion(loss_impl, ignore_mode='exclude')
    losses = criterion(cls_logits, mask_logits, labels, masks, gt_valid=valid)
    indices = criterion.matcher(cls_logits[-1], mask_logits[-1], labels, masks, gt_valid=valid)
    preds = torch.cat([mask_logits[-1][b, rows] for b, (rows, _) in enumerate(indices)])
    targets = torch.cat([masks[b][cols] for b, (_, cols) in enumerate(indices)]).float()
    upsampled = F.interpolate(preds[:, None], size=(HIGH, HIGH), mode='bilinear',
                              align_corners=False)[:, 0]
    kept_preds = upsampled[:, :KEPT_ROWS].flatten(1)
    kept_targets = targets[:, :KEPT_ROWS].flatten(1)
    num_masks = sum(len(m) for m in labels)
    torch.testing.assert_close(losses['loss_mask'],
                               20 * sigmoid_focal_loss(kept_preds, kept_targets, num_masks),
                               rtol=1e-5, atol=0)
    torch.testing.assert_close(losses['loss_dice'], dice_loss(kept_preds, kept_targets, num_masks),
                               rtol=1e-5, atol=0)


def test_negative_mode_ignores_valid_maps_and_exclude_needs_them():
    cls_logits, mask_logits, labels, masks, valid = random_outputs()
    negative = make_criterion(ignore_mode='negative')
    with_maps = negative(cls_logits, mask_logits, labels, masks, gt_valid=valid)
    without = negative(cls_logits, mask_logits, labels, masks)
    assert all(torch.equal(with_maps[k], without[k]) for k in without)
    with pytest.raises(ValueError, match="ignore_mode='exclude' needs gt_valid"):
        make_criterion(ignore_mode='exclude')(cls_logits, mask_logits, labels, masks)
    with pytest.raises(ValueError, match='valid map must be a bool tensor'):
        make_criterion(ignore_mode='exclude')(cls_logits, mask_logits, labels, masks,
                                              gt_valid=[v[:5] for v in valid])
    with pytest.raises(ValueError, match='ignore_mode must be one of'):
        make_criterion(ignore_mode='skip')


def test_point_sampled_exclude_with_all_valid_equals_negative():
    """Sampled validity of an all-valid map is exactly 1, border points included."""
    cls_logits, mask_logits, labels, masks, valid = random_outputs()
    all_valid = [torch.ones_like(v) for v in valid]
    results = []
    for mode, maps in (('negative', None), ('exclude', all_valid)):
        criterion = make_criterion(ignore_mode=mode, num_points=50)
        results.append(criterion(cls_logits, mask_logits, labels, masks,
                                 torch.Generator().manual_seed(5), gt_valid=maps))
    for key in results[0]:
        torch.testing.assert_close(results[1][key], results[0][key], rtol=1e-6, atol=0)


def test_point_sampled_exclude_drops_ignored_points():
    """With valid = top rows, points in the bottom rows weigh 0: changing the logits that only
    they read changes nothing, while it does with ignore_mode='negative'."""
    cls_logits, mask_logits, labels, masks, valid = random_outputs(layers=1)
    changed = mask_logits.clone()
    changed[..., LOW // 2 + 1:, :] += 5  # rows that only bottom (ignored) pixels read
    for mode, same in (('exclude', True), ('negative', False)):
        # Uniform points only: importance sampling looks at the logits, which differ.
        criterion = make_criterion(ignore_mode=mode, num_points=200, importance_sample_ratio=0.0)
        a, b = (criterion(cls_logits, x, labels, masks, torch.Generator().manual_seed(5),
                          gt_valid=valid) for x in (mask_logits, changed))
        equal = all(torch.allclose(a[k], b[k], rtol=1e-6, atol=0)
                    for k in ('loss_mask', 'loss_dice'))
        assert equal == same, mode
