"""mmdet-style loss and match-cost dicts: parsing, errors, and the numbers of mmdet's own loss and
cost modules built from the same dicts (the independent reference)."""
import pytest
import torch
import torch.nn.functional as F
from mmdet.registry import MODELS as MMDET_MODELS
from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS
from mmengine.structures import InstanceData

from mmseg_maskformer.core import (MASK2FORMER_LOSSES, MASK2FORMER_MATCH_COSTS, MASKFORMER_LOSSES,
                                   HungarianMatcher, SetCriterion, parse_losses,
                                   parse_match_costs)

NUM_CLASSES = 5


def test_official_defaults_parse_to_the_papers_numbers():
    maskformer = parse_losses(NUM_CLASSES, **MASKFORMER_LOSSES)
    assert maskformer.cls_weight == 1.0
    assert maskformer.class_weights.tolist() == [1.0] * NUM_CLASSES + [pytest.approx(0.1)]
    assert (maskformer.mask.weight, maskformer.mask.alpha, maskformer.mask.gamma) == (20.0, 0.25, 2)
    assert (maskformer.dice.weight, maskformer.dice.eps) == (1.0, 1.0)
    mask2former = parse_losses(NUM_CLASSES, **MASK2FORMER_LOSSES)
    assert (mask2former.cls_weight, mask2former.mask.weight, mask2former.dice.weight) == (2, 5, 5)
    assert (mask2former.mask.alpha, mask2former.mask.gamma) == (-1, 0)  # BCE: no α, γ = 0
    costs = parse_match_costs(MASK2FORMER_MATCH_COSTS)
    assert (costs.cls_weight, costs.mask_weight, costs.dice_weight) == (2, 5, 5)
    assert (costs.alpha, costs.gamma, costs.eps) == (-1, 0, 1)


def test_mmdet_prefixed_blocks_of_mmseg_configs_parse_as_the_plain_ones():
    # The loss block of mmseg 1.2.2's configs/mask2former/*.py, pasted unchanged.
    mmseg_block = dict(
        loss_cls=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                      reduction='mean', class_weight=[1.0] * NUM_CLASSES + [0.1]),
        loss_mask=dict(type='mmdet.CrossEntropyLoss', use_sigmoid=True, reduction='mean',
                       loss_weight=5.0),
        loss_dice=dict(type='mmdet.DiceLoss', use_sigmoid=True, activate=True, reduction='mean',
                       naive_dice=True, eps=1.0, loss_weight=5.0))
    pasted, ours = (parse_losses(NUM_CLASSES, **block)
                    for block in (mmseg_block, MASK2FORMER_LOSSES))
    assert torch.equal(pasted.class_weights, ours.class_weights)
    assert (pasted.cls_weight, pasted.mask, pasted.dice) == (ours.cls_weight, ours.mask, ours.dice)
    mmseg_costs = [dict(type='mmdet.ClassificationCost', weight=2.0),
                   dict(type='mmdet.CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                   dict(type='mmdet.DiceCost', weight=5.0, pred_act=True, eps=1.0)]
    assert parse_match_costs(mmseg_costs) == parse_match_costs(MASK2FORMER_MATCH_COSTS)


def test_class_weight_forms():
    uniform = parse_losses(NUM_CLASSES, dict(type='CrossEntropyLoss'), None, None)
    assert uniform.class_weights.tolist() == [1.0] * (NUM_CLASSES + 1)  # mmdet's default
    explicit = parse_losses(NUM_CLASSES, dict(type='CrossEntropyLoss',
                                              class_weight=[1, 2, 3, 4, 5, 0.5]), None, None)
    assert explicit.class_weights.tolist() == [1, 2, 3, 4, 5, 0.5]


@pytest.mark.parametrize('losses, message', [
    (dict(loss_cls=dict(type='FocalLoss')), "loss_cls: unknown type 'FocalLoss'"),
    (dict(loss_cls=dict(type='CrossEntropyLoss', class_weight=[1.0] * 3)), 'needs 6 values'),
    (dict(loss_cls=dict(type='CrossEntropyLoss', class_weight=[1.0] * 6, no_object_weight=0.1)),
     'not both'),
    (dict(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True)), 'only use_sigmoid=False'),
    (dict(loss_mask=dict(type='CrossEntropyLoss')), 'needs use_sigmoid=True'),
    (dict(loss_mask=dict(type='FocalLoss', reduction='sum')), "only reduction='mean'"),
    (dict(loss_mask=dict(type='FocalLoss', activated=True)), r"unsupported options \['activated'\]"),
    (dict(loss_dice=dict(type='DiceLoss', naive_dice=False)), 'only naive_dice=True'),
    (dict(loss_dice=dict(loss_weight=1.0)), 'must be a dict with a type'),
])
def test_unsupported_loss_options_are_named(losses, message):
    terms = {**MASKFORMER_LOSSES, **losses}
    with pytest.raises(ValueError, match=message):
        parse_losses(NUM_CLASSES, **terms)


@pytest.mark.parametrize('costs, message', [
    ([], 'non-empty list'),
    ([dict(type='ClassificationCost'), dict(type='ClassificationCost')], 'listed twice'),
    ([dict(type='FocalLossCost'), dict(type='CrossEntropyLossCost', use_sigmoid=True)],
     'list one of them'),
    ([dict(type='CrossEntropyLossCost')], 'needs use_sigmoid=True'),
    ([dict(type='FocalLossCost', binary_input=False)], 'only binary_input=True'),
    ([dict(type='DiceCost', pred_act=False)], 'only pred_act=True'),
    ([dict(type='BBoxL1Cost')], "unknown type 'BBoxL1Cost'"),
])
def test_unsupported_costs_are_named(costs, message):
    with pytest.raises(ValueError, match=message):
        parse_match_costs(costs)


def test_old_criterion_arguments_get_a_migration_message():
    from mmseg_maskformer.models import MaskFormerHead
    with pytest.raises(ValueError, match=r"no longer takes \['mask_weight'\].*loss_mask"):
        MaskFormerHead(in_channels=[8, 16, 32, 64], num_classes=NUM_CLASSES,
                       criterion=dict(mask_weight=20.0))


def random_case(seed, batch=2, queries=7, low=(8, 8), high=(16, 16), segments=(3, 4)):
    g = torch.Generator().manual_seed(seed)
    cls_logits = torch.randn(1, batch, queries, NUM_CLASSES + 1, generator=g)
    mask_logits = 3 * torch.randn(1, batch, queries, *low, generator=g)
    labels = [torch.randperm(NUM_CLASSES, generator=g)[:m] for m in segments]
    masks = [torch.rand(m, *high, generator=g) > 0.5 for m in segments]
    return cls_logits, mask_logits, labels, masks


def mmdet_module(cfg, registry, **extra):
    # _scope_: mmseg's registries (a test may have made them the default scope) have their own
    # FocalLoss, with another input layout.
    cfg = {**cfg, **extra, 'type': cfg['type'].replace('mmdet.', ''), '_scope_': 'mmdet'}
    cfg.pop('no_object_weight', None)
    return registry.build(cfg)


MMDET_MASK2FORMER_LOSSES = dict(  # what mmseg's Mask2Former config gives mmdet
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0,
                  class_weight=[1.0] * NUM_CLASSES + [0.1]),
    loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=5.0),
    loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, naive_dice=True, eps=1.0,
                   loss_weight=5.0))
MMDET_MASKFORMER_LOSSES = dict(
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                  class_weight=[1.0] * NUM_CLASSES + [0.1]),
    loss_mask=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=20.0),
    loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, naive_dice=True, eps=1.0,
                   loss_weight=1.0))


@pytest.mark.parametrize('losses', [MMDET_MASKFORMER_LOSSES, MMDET_MASK2FORMER_LOSSES],
                         ids=['maskformer-focal', 'mask2former-bce'])
def test_losses_equal_mmdets_modules_built_from_the_same_dicts(losses):
    """mmdet's MaskFormerHead / Mask2FormerHead loss calls (``_loss_by_feat_single``) on our
    matching, at full resolution: CE with ``avg_factor`` = the summed class weights, the mask
    term averaged over masks × pixels, dice over masks."""
    cls_logits, mask_logits, labels, masks = random_case(0)
    criterion = SetCriterion(NUM_CLASSES, HungarianMatcher(loss_impl='reference'),
                             loss_impl='reference', **losses)
    ours = criterion(cls_logits, mask_logits, labels, masks)
    indices = criterion.matcher(cls_logits[0], mask_logits[0], labels, masks)

    target = torch.full(cls_logits.shape[1:3], NUM_CLASSES)
    for image, (rows, cols) in enumerate(indices):
        target[image, rows] = labels[image][cols]
    loss_cls = mmdet_module(losses['loss_cls'], MMDET_MODELS)
    class_weight = torch.tensor(losses['loss_cls']['class_weight'])
    expected_cls = loss_cls(cls_logits[0].flatten(0, 1), target.flatten(),
                            avg_factor=class_weight[target].sum())

    preds = torch.cat([mask_logits[0, image, rows] for image, (rows, _) in enumerate(indices)])
    preds = F.interpolate(preds[:, None], size=masks[0].shape[-2:], mode='bilinear',
                          align_corners=False)[:, 0]
    gts = torch.cat([masks[image][cols] for image, (_, cols) in enumerate(indices)]).float()
    num_masks, pixels = sum(len(m) for m in masks), gts[0].numel()
    loss_mask = mmdet_module(losses['loss_mask'], MMDET_MODELS)
    if losses['loss_mask']['type'] == 'FocalLoss':  # mmdet passes 1 − target: label 0 = the mask
        expected_mask = loss_mask(preds.reshape(-1, 1), (1 - gts).reshape(-1).long(),
                                  avg_factor=num_masks * pixels)
    else:
        expected_mask = loss_mask(preds.reshape(-1), gts.reshape(-1),
                                  avg_factor=num_masks * pixels)
    expected_dice = mmdet_module(losses['loss_dice'], MMDET_MODELS)(preds, gts,
                                                                    avg_factor=num_masks)
    torch.testing.assert_close(ours['loss_cls'], expected_cls, rtol=1e-5, atol=0)
    torch.testing.assert_close(ours['loss_mask'], expected_mask, rtol=1e-5, atol=0)
    torch.testing.assert_close(ours['loss_dice'], expected_dice, rtol=1e-5, atol=0)


@pytest.mark.parametrize('costs', [
    [dict(type='ClassificationCost', weight=1.0),
     dict(type='FocalLossCost', weight=20.0, binary_input=True),
     dict(type='DiceCost', weight=1.0, pred_act=True, eps=1.0)],
    [dict(type='ClassificationCost', weight=2.0),
     dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
     dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)],
], ids=['maskformer', 'mask2former'])
def test_match_costs_equal_mmdets_cost_modules(costs):
    cls_logits, mask_logits, labels, masks = random_case(1, low=(16, 16))
    matcher = HungarianMatcher(costs, loss_impl='reference')
    weights = (matcher.costs.cls_weight, matcher.costs.mask_weight, matcher.costs.dice_weight)
    for image in range(len(labels)):
        terms = matcher.cost_terms(cls_logits[0, image], mask_logits[0, image], labels[image],
                                   masks[image])
        ours = sum(w * t for w, t in zip(weights, terms))
        pred = InstanceData(scores=cls_logits[0, image], masks=mask_logits[0, image])
        gt = InstanceData(labels=labels[image], masks=masks[image].float())
        expected = sum(mmdet_module(cost, MMDET_TASK_UTILS)(pred, gt) for cost in costs)
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_dropped_terms_are_not_computed_or_reported():
    cls_logits, mask_logits, labels, masks = random_case(2)
    full = SetCriterion(NUM_CLASSES, HungarianMatcher(loss_impl='reference'),
                        loss_impl='reference')(cls_logits, mask_logits, labels, masks)
    no_dice = SetCriterion(NUM_CLASSES, HungarianMatcher(loss_impl='reference'),
                           loss_dice=None, loss_impl='reference')(cls_logits, mask_logits, labels,
                                                                  masks)
    assert 'loss_dice' not in no_dice
    torch.testing.assert_close(no_dice['loss_mask'], full['loss_mask'], rtol=0, atol=0)
    class_only = HungarianMatcher([dict(type='ClassificationCost')], loss_impl='reference')
    _, mask_cost, dice_cost = class_only.cost_terms(cls_logits[0, 0], mask_logits[0, 0],
                                                    labels[0], masks[0])
    assert not mask_cost.any() and not dice_cost.any()
