import pytest
import torch
from mmdet.models.layers import PixelDecoder as MMDetPixelDecoder
from mmdet.models.layers import TransformerEncoderPixelDecoder as MMDetEncoderPixelDecoder
from mmseg.registry import MODELS, TASK_UTILS

from mmseg_maskformer.core import HungarianMatcher, semantic_inference, semantic_to_segments
from mmseg_maskformer.models import BasePixelDecoder, MaskFormerHead, TransformerEncoderPixelDecoder
from mmseg_maskformer.models.base_head import network_input_size

from head_testing import NUM_CLASSES, random_feats, sample_with_gt, tiny_head_cfg


def build_head(**overrides):
    head = MODELS.build(tiny_head_cfg(**overrides))
    head.init_weights()
    return head


def test_scoped_names_do_not_replace_mmseg_modules():
    assert MODELS.get('mmseg_maskformer.MaskFormerHead') is MaskFormerHead
    assert MODELS.get('MaskFormerHead') is not MaskFormerHead  # mmseg's own head is untouched
    matcher = TASK_UTILS.build(dict(type='mmseg_maskformer.HungarianMatcher', loss_impl='reference',
                                    match_costs=[dict(type='FocalLossCost', weight=5.0)]))
    assert isinstance(matcher, HungarianMatcher) and matcher.costs.mask_weight == 5.0


def test_forward_shapes_one_entry_per_decoder_layer():
    head = build_head()
    cls_logits, mask_logits = head(random_feats())
    assert cls_logits.shape == (3, 2, 7, NUM_CLASSES + 1)
    assert mask_logits.shape == (3, 2, 7, 16, 16)


def test_layer_by_layer_logits_equal_the_stacked_forward():
    # loss() and inference compute the layers they need one by one; forward() stacks them all.
    head = build_head()
    feats = random_feats()
    cls_logits, mask_logits = head(feats)
    hidden, mask_features = head.decode(feats)
    for layer in range(3):
        layer_cls, layer_masks = head.layer_logits(hidden[layer], mask_features)
        torch.testing.assert_close(layer_cls, cls_logits[layer], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(layer_masks, mask_logits[layer], rtol=1e-5, atol=1e-5)
    last_cls, last_masks = head.last_layer_logits(feats)
    torch.testing.assert_close(last_cls, cls_logits[-1], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(last_masks, mask_logits[-1], rtol=1e-5, atol=1e-5)


def test_loss_keys_finite_and_backward_reaches_every_parameter():
    head = build_head()
    sem = torch.randint(0, NUM_CLASSES, (2, 64, 64))
    sem[0, :8] = 255
    losses = head.loss(random_feats(), [sample_with_gt(s) for s in sem], None)
    expected = {'loss_cls', 'loss_mask', 'loss_dice', 'num_masks'} | {
        f'd{i}.loss_{t}' for i in range(2) for t in ('cls', 'mask', 'dice')}
    assert set(losses) == expected
    assert all(torch.isfinite(v) for v in losses.values())
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    missing = [n for n, p in head.named_parameters() if p.grad is None]
    assert not missing, missing


def test_targets_of_a_batch_are_views_of_one_buffer():
    sem = torch.randint(0, NUM_CLASSES, (3, 16, 16))
    labels, masks = build_head().segments_from_samples([sample_with_gt(s) for s in sem])
    for image in range(3):
        expected_labels, expected_masks = semantic_to_segments(sem[image], NUM_CLASSES)
        assert torch.equal(labels[image], expected_labels)
        assert torch.equal(masks[image], expected_masks)
    assert len({m.untyped_storage().data_ptr() for m in masks}) == 1
    assert masks[1].storage_offset() == masks[0].numel()


def test_crop_without_segments_trains_with_class_loss_only():
    head = build_head()
    losses = head.loss(random_feats(), [sample_with_gt(torch.full((64, 64), 255))] * 2, None)
    assert float(losses['loss_mask']) == 0.0 and float(losses['loss_dice']) == 0.0
    assert float(losses['loss_cls']) > 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert head.mask_embed.layers[-1].weight.grad is not None


def test_label_out_of_range_is_reported():
    head = build_head()
    sem = torch.zeros(64, 64, dtype=torch.long)
    sem[0, 0] = NUM_CLASSES + 2
    with pytest.raises(ValueError, match=f'label {NUM_CLASSES + 2} out of range'):
        head.loss(random_feats(batch=1), [sample_with_gt(sem)], None)


def test_no_deep_supervision_has_last_layer_only():
    head = build_head(deep_supervision=False)
    losses = head.loss(random_feats(), [sample_with_gt(torch.randint(0, 5, (64, 64)))] * 2, None)
    assert set(losses) == {'loss_cls', 'loss_mask', 'loss_dice', 'num_masks'}


def test_predict_is_soft_semantic_sum_at_input_size():
    head = build_head().eval()
    feats = random_feats(batch=1)
    with torch.no_grad():
        scores = head.predict(feats, [dict(img_shape=(64, 64), pad_shape=(64, 64))], None)
        cls_logits, mask_logits = head(feats)
    up = torch.nn.functional.interpolate(mask_logits[-1], size=(64, 64), mode='bilinear',
                                         align_corners=False)
    torch.testing.assert_close(scores, semantic_inference(cls_logits[-1], up))
    assert scores.shape == (1, NUM_CLASSES, 64, 64)


def test_network_input_size_prefers_the_shape_the_backbone_saw():
    # Whole-image inference: padded batch tensor.
    assert network_input_size(dict(img_shape=(60, 61), pad_shape=(64, 64)), (16, 16)) == (64, 64)
    # Sliding window: mmseg rewrites img_shape to the crop, pad_shape is stale.
    assert network_input_size(dict(img_shape=(32, 30), pad_shape=(64, 64)), (8, 8)) == (32, 30)
    assert network_input_size(dict(img_shape=(50, 50)), (13, 13)) == (50, 50)


def test_pixel_decoder_equals_mmdet_pixel_decoder():
    ours = BasePixelDecoder([8, 16, 32, 64], feat_channels=32, out_channels=24,
                            norm_cfg=dict(type='GN', num_groups=8))
    ours.init_weights()
    theirs = MMDetPixelDecoder([8, 16, 32, 64], feat_channels=32, out_channels=24,
                               norm_cfg=dict(type='GN', num_groups=8))
    theirs.load_state_dict(ours.state_dict(), strict=True)
    feats = random_feats(batch=2)
    mask_ours, memory_ours = ours(feats)
    mask_theirs, memory_theirs = theirs(feats, None)
    torch.testing.assert_close(mask_ours, mask_theirs)
    torch.testing.assert_close(memory_ours, memory_theirs)


def _mmdet_encoder_key(key: str) -> str:
    """Our parameter name -> mmdet's TransformerEncoderPixelDecoder's."""
    renames = (('input_proj.', 'encoder_in_proj.'), ('last_feat_conv.', 'encoder_out_proj.'),
               ('self_attn.', 'self_attn.attn.'), ('ffn.linear1.', 'ffn.layers.0.0.'),
               ('ffn.linear2.', 'ffn.layers.1.'), ('norm1.', 'norms.0.'), ('norm2.', 'norms.1.'))
    for ours, theirs in renames:
        key = key.replace(ours, theirs)
    return key


def test_encoder_pixel_decoder_equals_mmdet():
    ours = TransformerEncoderPixelDecoder([8, 16, 32, 64], feat_channels=32, out_channels=24,
                                          norm_cfg=dict(type='GN', num_groups=8),
                                          num_encoder_layers=2, num_heads=4,
                                          feedforward_channels=64, dropout=0.0)
    ours.init_weights()
    theirs = MMDetEncoderPixelDecoder(
        [8, 16, 32, 64], feat_channels=32, out_channels=24, norm_cfg=dict(type='GN', num_groups=8),
        encoder=dict(num_layers=2, layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=32, num_heads=4, dropout=0.0, batch_first=True),
            ffn_cfg=dict(embed_dims=32, feedforward_channels=64, num_fcs=2, ffn_drop=0.0))),
        positional_encoding=dict(num_feats=16, normalize=True))
    theirs.load_state_dict({_mmdet_encoder_key(k): v for k, v in ours.state_dict().items()},
                           strict=True)
    ours.eval(), theirs.eval()
    feats = random_feats(batch=2)
    metas = [dict(batch_input_shape=(64, 64), img_shape=(64, 64))] * 2
    with torch.no_grad():
        mask_ours, memory_ours = ours(feats)
        mask_theirs, memory_theirs = theirs(feats, metas)
    torch.testing.assert_close(memory_ours, memory_theirs)
    torch.testing.assert_close(mask_ours, mask_theirs)
    assert memory_ours.shape == (2, 32, 2, 2)


def test_head_with_encoder_pixel_decoder_projects_nothing():
    head = build_head(pixel_decoder=dict(type='TransformerEncoderPixelDecoder', feat_channels=32,
                                         norm_cfg=dict(type='GN', num_groups=8),
                                         num_encoder_layers=1, num_heads=4,
                                         feedforward_channels=64))
    # The encoder output already has the decoder's width (32): no 1×1 projection.
    assert isinstance(head.input_proj, torch.nn.Identity)
    cls_logits, mask_logits = head(random_feats())
    assert cls_logits.shape == (3, 2, 7, NUM_CLASSES + 1) and mask_logits.shape[-2:] == (16, 16)
