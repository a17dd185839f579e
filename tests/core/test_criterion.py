import pytest
import torch
from transformers.models.maskformer.modeling_maskformer import (MaskFormerHungarianMatcher,
                                                                MaskFormerLoss, dice_loss,
                                                                sigmoid_focal_loss)

from mmseg_maskformer import ops
from mmseg_maskformer.core import HungarianMatcher, SetCriterion, pack_masks

LOSS_IMPLS = ['reference', pytest.param('fused', marks=pytest.mark.needs_extension)]

NUM_CLASSES = 6


def make_criterion(**kwargs):
    matcher = HungarianMatcher(loss_impl='reference')  # the official costs 1, 20, 1
    return SetCriterion(NUM_CLASSES, matcher, loss_impl='reference', **kwargs)


def weighted_losses(cls_weight, mask_weight, dice_weight):
    return dict(loss_cls=dict(type='CrossEntropyLoss', loss_weight=cls_weight, no_object_weight=0.1),
                loss_mask=dict(type='FocalLoss', loss_weight=mask_weight),
                loss_dice=dict(type='DiceLoss', loss_weight=dice_weight))


def random_outputs(layers=3, batch=2, queries=10, low=(8, 8), high=(32, 32), segments=(3, 5)):
    cls_logits = torch.randn(layers, batch, queries, NUM_CLASSES + 1, requires_grad=True)
    mask_logits = (3 * torch.randn(layers, batch, queries, *low)).requires_grad_()
    labels = [torch.randperm(NUM_CLASSES)[:m] for m in segments]
    masks = [torch.rand(m, *high) > 0.5 for m in segments]
    return cls_logits, mask_logits, labels, masks


def hf_loss():
    matcher = MaskFormerHungarianMatcher(cost_class=1.0, cost_mask=20.0, cost_dice=1.0)
    return MaskFormerLoss(NUM_CLASSES, matcher, weight_dict={}, eos_coef=0.1)


def test_last_layer_terms_equal_transformers_loss():
    cls_logits, mask_logits, labels, masks = random_outputs()
    ours = make_criterion()(cls_logits, mask_logits, labels, masks)
    hf = hf_loss()(mask_logits[-1], cls_logits[-1], [m.float() for m in masks], labels)
    torch.testing.assert_close(ours['loss_cls'], hf['loss_cross_entropy'], rtol=1e-5, atol=0)
    torch.testing.assert_close(ours['loss_mask'], 20 * hf['loss_mask'], rtol=1e-5, atol=0)
    torch.testing.assert_close(ours['loss_dice'], hf['loss_dice'], rtol=1e-5, atol=0)
    assert float(ours['num_masks']) == 8


def test_intermediate_layers_follow_official_definition():
    # Official deep supervision: each intermediate output is matched and scored on its own, with
    # the same num_masks (transformers' auxiliary outputs differ from the official definition).
    cls_logits, mask_logits, labels, masks = random_outputs(layers=3)
    ours = make_criterion()(cls_logits, mask_logits, labels, masks)
    loss = hf_loss()
    float_masks = [m.float() for m in masks]
    for layer in range(2):
        hf = loss(mask_logits[layer], cls_logits[layer], float_masks, labels)
        torch.testing.assert_close(ours[f'd{layer}.loss_cls'], hf['loss_cross_entropy'], rtol=1e-5, atol=0)
        torch.testing.assert_close(ours[f'd{layer}.loss_mask'], 20 * hf['loss_mask'], rtol=1e-5, atol=0)
        torch.testing.assert_close(ours[f'd{layer}.loss_dice'], hf['loss_dice'], rtol=1e-5, atol=0)
    assert sorted(k for k in ours if k.startswith('d')) == sorted(
        f'd{i}.loss_{t}' for i in range(2) for t in ('cls', 'mask', 'dice'))


def test_batch_without_segments_trains_class_loss_only():
    cls_logits, mask_logits, labels, masks = random_outputs(segments=(0, 0))
    losses = make_criterion()(cls_logits, mask_logits, labels, masks)
    assert float(losses['loss_mask']) == 0 and float(losses['loss_dice']) == 0
    assert float(losses['num_masks']) == 1  # clamped
    # Every query is ∅: the class loss is the weighted CE towards the last class.
    expected = torch.nn.functional.cross_entropy(cls_logits[-1].transpose(1, 2),
                                                 torch.full((2, 10), NUM_CLASSES))
    torch.testing.assert_close(losses['loss_cls'], expected)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    assert mask_logits.grad is not None and torch.count_nonzero(mask_logits.grad) == 0
    assert torch.count_nonzero(cls_logits.grad) > 0


def test_one_image_without_segments():
    cls_logits, mask_logits, labels, masks = random_outputs(segments=(4, 0))
    losses = make_criterion()(cls_logits, mask_logits, labels, masks)
    hf = hf_loss()(mask_logits[-1], cls_logits[-1], [m.float() for m in masks], labels)
    torch.testing.assert_close(losses['loss_mask'], 20 * hf['loss_mask'], rtol=1e-5, atol=0)


def test_weights_scale_terms():
    cls_logits, mask_logits, labels, masks = random_outputs()
    base = make_criterion(**weighted_losses(1.0, 1.0, 1.0))(cls_logits, mask_logits, labels, masks)
    scaled = make_criterion(**weighted_losses(2.0, 3.0, 4.0))(cls_logits, mask_logits, labels,
                                                              masks)
    for key, factor in (('loss_cls', 2.0), ('loss_mask', 3.0), ('loss_dice', 4.0)):
        torch.testing.assert_close(scaled[key], factor * base[key])


def test_point_sampled_losses_are_close_to_exact():
    cls_logits, mask_logits, labels, masks = random_outputs(low=(16, 16), high=(64, 64))
    with torch.no_grad():
        mask_logits.copy_(torch.nn.functional.avg_pool2d(mask_logits.flatten(0, 1), 3, 1, 1).view_as(mask_logits))
    exact = make_criterion()(cls_logits, mask_logits, labels, masks)
    sampled = make_criterion(num_points=4096)(cls_logits, mask_logits, labels, masks,
                                              generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sampled['loss_cls'], exact['loss_cls'])
    # Importance sampling favours uncertain points, so only a loose agreement is expected.
    assert abs(float(sampled['loss_dice']) - float(exact['loss_dice'])) < 0.15 * float(exact['loss_dice'])


def test_rejects_label_out_of_range():
    cls_logits, mask_logits, labels, masks = random_outputs()
    labels[1][0] = NUM_CLASSES
    with pytest.raises(ValueError, match=f'label {NUM_CLASSES} out of range'):
        make_criterion()(cls_logits, mask_logits, labels, masks)


def test_rejects_wrong_class_logit_width():
    cls_logits, mask_logits, labels, masks = random_outputs()
    with pytest.raises(ValueError, match='class logits must have shape'):
        make_criterion()(cls_logits[..., :-1], mask_logits, labels, masks)


def test_official_focal_and_dice_definitions_match_transformers_helpers():
    # Guards the reference formulas the criterion uses against transformers' own helpers.
    from mmseg_maskformer.ops.reference import sigmoid_focal_dice_loss
    x = 4 * torch.randn(5, 100)
    t = (torch.rand(5, 100) > 0.5).float()
    focal, dice = sigmoid_focal_dice_loss(x, t)
    torch.testing.assert_close(focal.sum() / 3, sigmoid_focal_loss(x, t, 3))
    torch.testing.assert_close(dice.sum() / 3, dice_loss(x, t, 3))


@pytest.mark.parametrize('loss_impl', LOSS_IMPLS)
def test_point_sampled_mask_losses_follow_mask2former(loss_impl):
    # Matched masks, permuted targets and a target left unmatched (more segments than queries in
    # image 1): the losses on the sampled points of each prediction and its own target, computed
    # step by step with the reference ops on float copies of the matched masks.
    mask_logits = 3 * torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    masks = [torch.rand(m, 32, 32, generator=torch.Generator().manual_seed(m)) > 0.5
             for m in (3, 5)]
    indices = [(torch.tensor([0, 2, 3]), torch.tensor([2, 0, 1])),
               (torch.tensor([0, 1, 2, 3]), torch.tensor([4, 1, 0, 3]))]
    num_masks = torch.tensor(7.0)
    matcher = HungarianMatcher(loss_impl=loss_impl)
    criterion = SetCriterion(NUM_CLASSES, matcher, loss_impl=loss_impl, num_points=50)
    focal, dice = criterion.loss_masks(mask_logits, masks, indices, num_masks,
                                       generator=torch.Generator().manual_seed(1))

    preds = torch.cat([mask_logits[i, p] for i, (p, _) in enumerate(indices)])
    targets = torch.cat([masks[i][g] for i, (_, g) in enumerate(indices)]).float()
    points = ops.reference.sample_uncertain_points(preds, 50, 3.0, 0.75,
                                                   generator=torch.Generator().manual_seed(1))
    x = ops.reference.point_sample(preds[:, None], points)[:, 0]
    t = ops.reference.point_sample(targets[:, None], points)[:, 0]
    expected_focal, expected_dice = ops.reference.sigmoid_focal_dice_loss(x, t)
    torch.testing.assert_close(focal, expected_focal.sum() / num_masks, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(dice, expected_dice.sum() / num_masks, rtol=1e-5, atol=1e-7)


def test_more_segments_than_queries_matches_transformers():
    # Some masks stay unmatched, so the losses take copies of the matched ones, not the
    # concatenation of all masks that a full matching uses.
    cls_logits, mask_logits, labels, masks = random_outputs(layers=1, queries=3, segments=(5, 2))
    ours = make_criterion()(cls_logits, mask_logits, labels, masks)
    hf = hf_loss()(mask_logits[-1], cls_logits[-1], [m.float() for m in masks], labels)
    torch.testing.assert_close(ours['loss_mask'], 20 * hf['loss_mask'], rtol=1e-5, atol=0)
    torch.testing.assert_close(ours['loss_dice'], hf['loss_dice'], rtol=1e-5, atol=0)


def bool_tensors_saved_for_backward(criterion, *inputs):
    """The criterion's losses, and the bool tensors (the targets) its autograd graph saves."""
    saved = []

    def pack(tensor):
        if tensor.dtype == torch.bool:
            saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        losses = criterion(*inputs)
    return losses, saved


@pytest.mark.needs_extension
def test_exact_losses_of_every_layer_save_one_copy_of_the_targets():
    cls_logits, mask_logits, labels, masks = random_outputs(layers=4)
    matcher = HungarianMatcher(loss_impl='fused')
    criterion = SetCriterion(NUM_CLASSES, matcher, loss_impl='fused')
    losses, saved = bool_tensors_saved_for_backward(criterion, cls_logits, mask_logits, labels,
                                                    masks)
    assert len(saved) == 4  # one per layer
    assert {t.data_ptr() for t in saved} == {saved[0].data_ptr()}
    torch.testing.assert_close(saved[0], torch.cat(masks), rtol=0, atol=0)
    reference = make_criterion()(cls_logits, mask_logits, labels, masks)
    for key in losses:
        torch.testing.assert_close(losses[key], reference[key], rtol=1e-4, atol=1e-6)


@pytest.mark.needs_extension
def test_packed_masks_are_saved_for_backward_without_a_copy():
    """The head packs each batch's masks into one buffer: the losses then keep that buffer."""
    cls_logits, mask_logits, labels, masks = random_outputs(layers=2)
    packed = pack_masks(masks)
    criterion = SetCriterion(NUM_CLASSES, HungarianMatcher(loss_impl='fused'), loss_impl='fused')
    losses, saved = bool_tensors_saved_for_backward(criterion, cls_logits, mask_logits, labels,
                                                    packed)
    assert len(saved) == 2 and {t.data_ptr() for t in saved} == {packed[0].data_ptr()}
    unpacked = criterion(cls_logits, mask_logits, labels, masks)
    for key in losses:
        torch.testing.assert_close(losses[key], unpacked[key], rtol=0, atol=0)
