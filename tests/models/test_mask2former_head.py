"""Mask2FormerHead: the whole head against Hugging Face's pixel decoder + transformer module, its
losses (Mask2Former's BCE through the focal op) and prediction through the shared paths."""
import pytest
import torch
import torch.nn.functional as F
from transformers import Mask2FormerConfig
from transformers.models.mask2former.modeling_mask2former import (Mask2FormerPixelDecoder,
                                                                  Mask2FormerTransformerModule)

from head_testing import sample_with_gt
from mask2former_testing import hf_decoder_state, hf_pixel_decoder_name, randomise
from mmseg_maskformer import ops
from mmseg_maskformer.registry import MODELS

IN_CHANNELS = [8, 16, 24, 40]
NUM_CLASSES = 5


def tiny_head(**overrides):
    cfg = dict(type='mmseg_maskformer.Mask2FormerHead', in_channels=IN_CHANNELS,
               num_classes=NUM_CLASSES, num_queries=6,
               pixel_decoder=dict(type='MSDeformAttnPixelDecoder', feat_channels=32,
                                  num_encoder_layers=2, num_heads=4, feedforward_channels=48),
               mask_channels=24,
               transformer_decoder=dict(num_layers=4, embed_dims=32, num_heads=4,
                                        feedforward_channels=48),
               num_points=100, loss_impl='reference')
    cfg.update(overrides)
    return MODELS.build(cfg)


def features(batch=2, size=64):
    return [torch.randn(batch, c, -(-size // 2**(i + 2)), -(-size // 2**(i + 2)))
            for i, c in enumerate(IN_CHANNELS)]


def test_head_matches_hf_pixel_decoder_and_transformer_module():
    torch.manual_seed(0)
    config = Mask2FormerConfig(feature_size=32, mask_feature_size=24, hidden_dim=32,
                               encoder_feedforward_dim=48, dim_feedforward=48,
                               num_attention_heads=4, encoder_layers=2, decoder_layers=5,
                               num_queries=6, num_labels=NUM_CLASSES, dropout=0.0,
                               common_stride=4, feature_strides=[4, 8, 16, 32])
    hf_pixel = Mask2FormerPixelDecoder(config, feature_channels=IN_CHANNELS).eval()
    hf_decoder = Mask2FormerTransformerModule(in_features=32, config=config).eval()
    class_predictor = torch.nn.Linear(32, NUM_CLASSES + 1)
    randomise(hf_pixel, hf_decoder, class_predictor)
    head = tiny_head().eval()
    state = {f'pixel_decoder.{hf_pixel_decoder_name(k)}': v
             for k, v in hf_pixel.state_dict().items()}
    state.update({f'transformer_decoder.{k}': v
                  for k, v in hf_decoder_state(hf_decoder.state_dict(), class_predictor).items()})
    head.load_state_dict(state, strict=True)
    feats = features(size=75)  # odd: 19x19, 10x10, 5x5, 3x3
    with torch.no_grad():
        pixel = hf_pixel(feats)
        want = hf_decoder(list(pixel.multi_scale_features), pixel.mask_features)
        all_cls, all_masks = head(feats)
    assert len(all_cls) == len(all_masks) == 5
    for got, expected in zip(all_masks, want.masks_queries_logits):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    for got, hidden in zip(all_cls, want.intermediate_hidden_states):
        torch.testing.assert_close(got, class_predictor(hidden.transpose(0, 1)), rtol=1e-4,
                                   atol=1e-4)
    cls_logits, mask_logits = head.last_layer_logits(feats)
    torch.testing.assert_close(mask_logits, all_masks[-1])


def test_bce_is_the_focal_op_without_modulation_and_weighting():
    # Mask2Former's sigmoid_ce_loss / batch_sigmoid_ce_loss: mean BCE over the points.
    logits, targets = 3 * torch.randn(4, 50), (torch.rand(4, 50) > 0.5).float()
    focal, _ = ops.reference.sigmoid_focal_dice_loss(logits, targets, alpha=-1, gamma=0.0)
    torch.testing.assert_close(focal, F.binary_cross_entropy_with_logits(
        logits, targets, reduction='none').mean(1))
    cost, _ = ops.reference.pairwise_mask_costs(logits, targets[:3], alpha=-1, gamma=0.0)
    expected = torch.stack([F.binary_cross_entropy_with_logits(
        logits, t.expand_as(logits), reduction='none').mean(1) for t in targets[:3]], 1)
    torch.testing.assert_close(cost, expected)


@pytest.mark.needs_extension
def test_losses_every_prediction_set_and_fused_equals_reference():
    torch.manual_seed(1)
    feats = features()
    samples = [sample_with_gt(torch.randint(0, NUM_CLASSES, (64, 64))) for _ in range(2)]
    state = tiny_head().state_dict()
    losses = {}
    for impl in ('reference', 'fused'):
        head = tiny_head(loss_impl=impl)
        head.load_state_dict(state)
        torch.manual_seed(2)  # the same random points for both
        losses[impl] = head.loss(feats, samples)
    keys = {f'd{i}.{k}' for i in range(4) for k in ('loss_cls', 'loss_mask', 'loss_dice')}
    assert set(losses['reference']) == keys | {'loss_cls', 'loss_mask', 'loss_dice', 'num_masks'}
    for key, value in losses['reference'].items():
        assert torch.isfinite(value), key
        torch.testing.assert_close(losses['fused'][key], value, rtol=1e-4, atol=1e-5)
    sum(v for k, v in losses['fused'].items() if k != 'num_masks').backward()
