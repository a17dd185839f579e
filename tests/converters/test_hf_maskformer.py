"""Hugging Face transformers' MaskFormer as an independent oracle for the converter and our model.

Every comparison runs a tiny random HF model (float32, eval) and its conversion on the same input.
Measured differences are printed (``pytest -s``) and recorded as junit properties.

HF models are built with ``use_auxiliary_loss=False``: with auxiliary outputs HF computes the
intermediate logits from its recorded decoder hidden states (the zero input queries and the raw,
un-normalised layer outputs), and with ``decoder_config.auxiliary_loss=True`` it also feeds the
normalised output of each layer into the next one; the official model does neither. The final
layer is the same in all these cases, and ``test_intermediate_layers_follow_official_definition``
checks our intermediate outputs against the official definition built from HF's own modules.
"""
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hf_testing import (CASES, NUM_LABELS, STAGES, build_converted, max_abs_diff, our_logits,
                        sample_with_gt, tiny_hf_config, tiny_hf_model)
from mmseg.apis import init_model
from mmseg.models.backbones.resnet import Bottleneck, ResNet
from transformers import (MaskFormerForInstanceSegmentation, MaskFormerImageProcessorPil,
                          MaskFormerModel, SwinConfig)
from transformers.models.maskformer.modeling_maskformer import (pair_wise_dice_loss,
                                                                pair_wise_sigmoid_focal_loss)

from mmseg_maskformer.converters import convert_hf_maskformer, random_palette
from mmseg_maskformer.converters.hf import (BOTTLENECK_DEPTHS, BOTTLENECK_EXPANSION,
                                            check_supported)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOGIT_ATOL = 1e-4
LOSS_RTOL = 1e-5
# Non-default loss weights, so that a mix-up of HF fields shows.
LOSS_WEIGHTS = dict(cross_entropy_weight=2.0, mask_weight=10.0, dice_weight=3.0,
                    no_object_weight=0.2)


def report(record_property, name, value):
    record_property(name, value)
    print(f'{name}: {value:.3g}')


def random_masks(num, size, generator):
    """Blobby binary masks: thresholded, bilinearly upsampled 8x8 noise."""
    noise = torch.randn(num, 1, 8, 8, generator=generator)
    return F.interpolate(noise, size=size, mode='bilinear', align_corners=False)[:, 0] > 0.3


def random_sem_seg(size, generator, num_classes=NUM_LABELS, ignore_index=255):
    """A label map with blobs of a few classes and an ignored stripe."""
    coarse = torch.randint(0, num_classes, (1, 1, 4, 4), generator=generator).float()
    sem_seg = F.interpolate(coarse, size=size, mode='nearest')[0, 0].long()
    sem_seg[:, :5] = ignore_index
    return sem_seg


@pytest.mark.parametrize('case', CASES)
def test_logits_match_hf(case, record_property):
    hf_model = tiny_hf_model(**CASES[case])
    model = build_converted(hf_model)
    pixel_values = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = hf_model(pixel_values=pixel_values)
    cls_logits, mask_logits = our_logits(model, pixel_values)

    assert cls_logits.shape[0] == hf_model.config.decoder_config.decoder_layers
    cls_diff = max_abs_diff(cls_logits[-1], expected.class_queries_logits)
    mask_diff = max_abs_diff(mask_logits[-1], expected.masks_queries_logits)
    report(record_property, f'{case}.class_logits_max_abs_diff', cls_diff)
    report(record_property, f'{case}.mask_logits_max_abs_diff', mask_diff)
    # The tolerance means something only for logits of order one.
    report(record_property, f'{case}.mask_logits_std', expected.masks_queries_logits.std().item())
    assert expected.masks_queries_logits.std() > 0.1 and expected.class_queries_logits.std() > 0.1
    assert cls_diff <= LOGIT_ATOL and mask_diff <= LOGIT_ATOL


@torch.no_grad()
def official_layer_outputs(hf_model, pixel_values):
    """Per-layer logits as the official MaskFormer defines them, computed with HF's modules.

    Every layer's output goes through the shared final LayerNorm for supervision, while the next
    layer receives the un-normalised output.
    """
    pixel_level = hf_model.model.pixel_level_module(pixel_values)
    pixel_embeddings = pixel_level.decoder_last_hidden_state
    module = hf_model.model.transformer_module
    memory = module.input_projection(pixel_level.encoder_last_hidden_state)
    memory_pos = module.position_embedder(memory.shape, memory.device, memory.dtype)
    memory_pos = memory_pos.flatten(2).transpose(1, 2)
    memory = memory.flatten(2).transpose(1, 2)
    query_pos = module.queries_embedder.weight[None].repeat(memory.shape[0], 1, 1)
    hidden = torch.zeros_like(query_pos)
    cls_logits, mask_logits = [], []
    for layer in module.decoder.layers:
        hidden = layer(hidden, None, memory_pos, query_pos, memory)
        normed = module.decoder.layernorm(hidden)
        cls_logits.append(hf_model.class_predictor(normed))
        mask_logits.append(
            torch.einsum('bqc,bchw->bqhw', hf_model.mask_embedder(normed), pixel_embeddings))
    return torch.stack(cls_logits), torch.stack(mask_logits)


def test_intermediate_layers_follow_official_definition(record_property):
    hf_model = tiny_hf_model(decoder=dict(decoder_layers=4))
    model = build_converted(hf_model)
    pixel_values = torch.randn(2, 3, 64, 64)
    expected_cls, expected_masks = official_layer_outputs(hf_model, pixel_values)
    with torch.no_grad():
        final = hf_model(pixel_values=pixel_values)
    # The reconstruction is HF's forward pass for the last layer.
    assert max_abs_diff(expected_cls[-1], final.class_queries_logits) <= 1e-5
    cls_logits, mask_logits = our_logits(model, pixel_values)
    cls_diff = max_abs_diff(cls_logits, expected_cls)
    mask_diff = max_abs_diff(mask_logits, expected_masks)
    report(record_property, 'all_layers.class_logits_max_abs_diff', cls_diff)
    report(record_property, 'all_layers.mask_logits_max_abs_diff', mask_diff)
    assert cls_diff <= LOGIT_ATOL and mask_diff <= LOGIT_ATOL


@pytest.mark.parametrize('num_gt', [(3, 6), (12, 1)],
                         ids=['fewer-than-queries', 'more-than-queries'])
def test_matcher_matches_hf(num_gt, record_property):
    hf_model = tiny_hf_model(**LOSS_WEIGHTS)
    model = build_converted(hf_model)
    pixel_values = torch.randn(len(num_gt), 3, 64, 64)
    cls_logits, mask_logits = (x[-1] for x in our_logits(model, pixel_values))
    generator = torch.Generator().manual_seed(sum(num_gt))
    gt_labels = [torch.randint(0, NUM_LABELS, (n, ), generator=generator) for n in num_gt]
    gt_masks = [random_masks(n, (64, 64), generator) for n in num_gt]

    matcher = model.decode_head.matcher
    ours = matcher(cls_logits, mask_logits, gt_labels, gt_masks)
    theirs = hf_model.matcher(mask_logits, cls_logits, [m.float() for m in gt_masks], gt_labels)
    for (rows, cols), (hf_rows, hf_cols), n in zip(ours, theirs, num_gt):
        assert len(rows) == min(cls_logits.shape[1], n)
        assert torch.equal(rows.cpu(), hf_rows) and torch.equal(cols.cpu(), hf_cols)

    # HF's matcher cost, as in MaskFormerHungarianMatcher.forward, against ours.
    hf_matcher = hf_model.matcher
    cost_diff = 0.0
    for cls, masks, labels, gts in zip(cls_logits, mask_logits, gt_labels, gt_masks):
        target = F.interpolate(gts[:, None].float(), size=masks.shape[-2:], mode='nearest')
        preds, target = masks.flatten(1), target.flatten(1)
        hf_cost = (hf_matcher.cost_mask * pair_wise_sigmoid_focal_loss(preds, target) +
                   hf_matcher.cost_class * -cls.softmax(-1)[:, labels] +
                   hf_matcher.cost_dice * pair_wise_dice_loss(preds, target))
        weights = (matcher.costs.cls_weight, matcher.costs.mask_weight, matcher.costs.dice_weight)
        cost = sum(w * t for w, t in zip(weights, matcher.cost_terms(cls, masks, labels, gts)))
        cost_diff = max(cost_diff, max_abs_diff(cost, hf_cost))
    report(record_property, f'matcher.{num_gt}.cost_max_abs_diff', cost_diff)
    assert cost_diff <= 1e-5


def test_losses_match_hf(record_property):
    hf_model = tiny_hf_model(**LOSS_WEIGHTS)
    model = build_converted(hf_model)
    pixel_values = torch.randn(2, 3, 64, 64)
    generator = torch.Generator().manual_seed(0)
    sem_segs = [random_sem_seg((64, 64), generator) for _ in range(2)]
    with torch.no_grad():
        losses = model.decode_head.loss(model.extract_feat(pixel_values),
                                        [sample_with_gt(s) for s in sem_segs], None)
        outputs = hf_model(pixel_values=pixel_values)
    # One mask per class present; ignored pixels are negative in every mask (official mapper).
    class_labels = [s[s != 255].unique() for s in sem_segs]
    mask_labels = [(s[None] == labels[:, None, None]).float()
                   for s, labels in zip(sem_segs, class_labels)]
    hf_unweighted = hf_model.criterion(outputs.masks_queries_logits, outputs.class_queries_logits,
                                       mask_labels, class_labels)
    # Ours are weighted already; HF's criterion terms are not (get_loss_dict weights them).
    assert set(losses) == {'loss_cls', 'loss_mask', 'loss_dice', 'num_masks'}
    for ours, hf_name, weight in (('loss_cls', 'loss_cross_entropy', 'cross_entropy_weight'),
                                  ('loss_mask', 'loss_mask', 'mask_weight'),
                                  ('loss_dice', 'loss_dice', 'dice_weight')):
        expected = hf_unweighted[hf_name] * LOSS_WEIGHTS[weight]
        rel = ((losses[ours] - expected).abs() / expected.abs()).item()
        report(record_property, f'{ours}.rel_diff', rel)
        torch.testing.assert_close(losses[ours], expected, rtol=LOSS_RTOL, atol=0)


def test_semantic_scores_match_hf_einsum(record_property):
    hf_model = tiny_hf_model()
    model = build_converted(hf_model)
    pixel_values = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        outputs = hf_model(pixel_values=pixel_values)
        expected = torch.einsum('bqc,bqhw->bchw',
                                outputs.class_queries_logits.softmax(-1)[..., :-1],
                                outputs.masks_queries_logits.sigmoid())
        # An input size equal to the mask resolution makes predict's resize the identity, so the
        # scores are compared before resizing, where HF's post-processing takes its einsum.
        mask_size = tuple(outputs.masks_queries_logits.shape[-2:])
        scores = model.decode_head.predict(model.extract_feat(pixel_values),
                                           [dict(img_shape=mask_size)] * 2, None)
    diff = max_abs_diff(scores, expected)
    report(record_property, 'semantic_scores_max_abs_diff', diff)
    assert diff <= 1e-5


def test_convert_checkpoint_tool_round_trip(tmp_path, record_property):
    id2label = {i: f'class_{i}' for i in range(NUM_LABELS)}
    hf_model = tiny_hf_model(seed=3, id2label=id2label)
    hf_dir = tmp_path / 'maskformer-tiny'
    hf_model.save_pretrained(hf_dir)
    processor = MaskFormerImageProcessorPil(do_resize=False, image_mean=[0.5, 0.4, 0.3],
                                            image_std=[0.2, 0.25, 0.3])
    processor.save_pretrained(hf_dir)
    out_dir = tmp_path / 'mmseg'
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, 'tools', 'convert_checkpoint.py'),
         str(hf_dir), str(out_dir)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, 'OMP_NUM_THREADS': '1'})
    assert result.returncode == 0, result.stderr
    config, checkpoint = out_dir / 'maskformer-tiny.py', out_dir / 'maskformer-tiny.pth'
    assert str(config) in result.stdout and str(checkpoint) in result.stdout

    model = init_model(str(config), str(checkpoint), device='cpu')
    assert model.dataset_meta['classes'] == tuple(id2label.values())
    # HF configs name no colours: mmseg's seeded palette, as for official conversions.
    assert model.dataset_meta['palette'] == random_palette(NUM_LABELS)

    # The data preprocessor (BGR uint8 image in) against the saved HF image processor (RGB in).
    rgb = np.random.RandomState(0).randint(0, 256, (64, 96, 3), dtype=np.uint8)
    hf_pixels = processor(images=rgb, return_tensors='pt')['pixel_values']
    bgr = torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1])).permute(2, 0, 1)
    pixels = model.data_preprocessor(dict(inputs=[bgr]), False)['inputs']
    pixel_diff = max_abs_diff(pixels, hf_pixels)
    report(record_property, 'round_trip.pixel_values_max_abs_diff', pixel_diff)
    assert pixel_diff <= 1e-5

    with torch.no_grad():
        expected = hf_model(pixel_values=hf_pixels)
    cls_logits, mask_logits = our_logits(model, pixels)
    cls_diff = max_abs_diff(cls_logits[-1], expected.class_queries_logits)
    mask_diff = max_abs_diff(mask_logits[-1], expected.masks_queries_logits)
    report(record_property, 'round_trip.class_logits_max_abs_diff', cls_diff)
    report(record_property, 'round_trip.mask_logits_max_abs_diff', mask_diff)
    assert cls_diff <= LOGIT_ATOL and mask_diff <= LOGIT_ATOL


def test_config_fields_come_from_hf():
    hf_model = tiny_hf_model(use_auxiliary_loss=True, **CASES['r101-no-shortcut-no-proj'])
    model_cfg, _ = convert_hf_maskformer(hf_model)
    hf_config = hf_model.config
    decoder = hf_config.decoder_config
    backbone, head = model_cfg['backbone'], model_cfg['decode_head']
    assert (backbone['depth'], backbone['stem_channels'], backbone['base_channels']) == (101, 32, 8)
    assert model_cfg['data_preprocessor']['mean'] == [123.675, 116.28, 103.53]
    assert model_cfg['data_preprocessor']['std'] == [58.395, 57.12, 57.375]
    assert (head['num_classes'], head['num_queries']) == (hf_config.num_labels, decoder.num_queries)
    assert head['pixel_decoder']['feat_channels'] == hf_config.fpn_feature_size
    assert head['mask_channels'] == hf_config.mask_feature_size
    assert head['transformer_decoder'] == dict(
        num_layers=decoder.decoder_layers, embed_dims=decoder.d_model,
        num_heads=decoder.decoder_attention_heads, feedforward_channels=decoder.decoder_ffn_dim,
        dropout=decoder.dropout)
    assert head['deep_supervision'] is True


UNSUPPORTED = {
    'backbone_config.use_absolute_embeddings': dict(backbone=SwinConfig(
        embed_dim=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8], window_size=4, image_size=64,
        out_features=STAGES, use_absolute_embeddings=True)),
    'backbone_config.hidden_act': dict(backbone=dict(hidden_act='gelu')),
    'backbone_config.layer_type': dict(backbone=dict(layer_type='basic')),
    'backbone_config.downsample_in_bottleneck': dict(backbone=dict(downsample_in_bottleneck=True)),
    'backbone_config.downsample_in_first_stage': dict(
        backbone=dict(downsample_in_first_stage=True)),
    'backbone_config.out_features': dict(backbone=dict(out_features=STAGES[1:])),
    'backbone_config.depths': dict(backbone=dict(depths=[2, 2, 2, 2])),
    'backbone_config.hidden_sizes': dict(backbone=dict(hidden_sizes=[32, 64, 96, 128])),
    'decoder_config.activation_function': dict(decoder=dict(activation_function='gelu')),
}


@pytest.mark.parametrize('field', UNSUPPORTED)
def test_unsupported_config_raises_naming_the_field(field):
    hf_model = MaskFormerForInstanceSegmentation(tiny_hf_config(**UNSUPPORTED[field]))
    with pytest.raises(ValueError, match=re.escape(field)):
        convert_hf_maskformer(hf_model)


def test_unsupported_backbone_type_raises_naming_it():
    config = SimpleNamespace(backbone_config=SimpleNamespace(model_type='convnext'))
    with pytest.raises(ValueError, match="model_type='convnext'.*'resnet', 'swin'"):
        check_supported(config)


def test_depth_table_matches_mmseg_resnet():
    assert BOTTLENECK_DEPTHS == {
        tuple(blocks): depth for depth, (block, blocks) in ResNet.arch_settings.items()
        if block is Bottleneck
    }
    assert BOTTLENECK_EXPANSION == Bottleneck.expansion


def test_depths_error_lists_supported_depths():
    hf_model = MaskFormerForInstanceSegmentation(tiny_hf_config(backbone=dict(depths=[3, 4, 5, 3])))
    with pytest.raises(ValueError, match=r'depths=\[3, 4, 5, 3\].*\[3, 4, 6, 3\] \(ResNet-50\)'):
        convert_hf_maskformer(hf_model)


def test_non_segmentation_model_raises():
    with pytest.raises(TypeError, match='MaskFormerForInstanceSegmentation'):
        convert_hf_maskformer(MaskFormerModel(tiny_hf_config()))


def test_decoder_auxiliary_loss_warns():
    hf_model = tiny_hf_model(decoder=dict(auxiliary_loss=True))
    with pytest.warns(UserWarning, match='auxiliary_loss'):
        convert_hf_maskformer(hf_model)


def test_swin_config_fields_come_from_hf():
    backbone = SwinConfig(embed_dim=32, depths=[2, 2, 3, 2], num_heads=[1, 2, 4, 8],
                          window_size=5, mlp_ratio=2.0, image_size=96, out_features=STAGES)
    model_cfg, _ = convert_hf_maskformer(tiny_hf_model(backbone=backbone))
    ours = model_cfg['backbone']
    assert ours['type'] == 'SwinTransformer'
    assert (ours['embed_dims'], ours['depths'], ours['num_heads']) == (32, [2, 2, 3, 2],
                                                                      [1, 2, 4, 8])
    assert (ours['window_size'], ours['mlp_ratio'], ours['patch_size']) == (5, 2.0, 4)
    assert ours['strides'] == (4, 2, 2, 2) and ours['out_indices'] == (0, 1, 2, 3)
    assert ours['use_abs_pos_embed'] is False and ours['qkv_bias'] is True
    assert model_cfg['decode_head']['in_channels'] == [32, 64, 128, 256]


def test_saved_swin_model_converts(tmp_path, record_property):
    # save_pretrained stores the MaskFormerSwinConfig HF built from the SwinConfig
    # (model_type 'maskformer-swin'): the reloaded model converts as well.
    backbone = SwinConfig(embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8],
                          window_size=3, image_size=64, out_features=STAGES)
    tiny_hf_model(seed=9, backbone=backbone).save_pretrained(tmp_path)
    hf_model = MaskFormerForInstanceSegmentation.from_pretrained(tmp_path).eval()
    assert hf_model.config.backbone_config.model_type == 'maskformer-swin'
    model = build_converted(hf_model)
    pixel_values = torch.randn(1, 3, 75, 101)
    with torch.no_grad():
        expected = hf_model(pixel_values=pixel_values)
    cls_logits, mask_logits = our_logits(model, pixel_values)
    mask_diff = max_abs_diff(mask_logits[-1], expected.masks_queries_logits)
    report(record_property, 'saved_swin.mask_logits_max_abs_diff', mask_diff)
    assert max_abs_diff(cls_logits[-1], expected.class_queries_logits) <= LOGIT_ATOL
    assert mask_diff <= LOGIT_ATOL
