"""Converted Hugging Face Mask2Former (ResNet, Swin) models against transformers'
Mask2FormerForUniversalSegmentation: class and mask logits of every prediction set."""
import pytest
import torch
from mmseg.apis import init_model
from mmseg.registry import MODELS
from official_testing import mask2former_rel_errors, tiny_hf_mask2former
from transformers import SwinConfig

from cli_testing import load_tool
from hf_testing import STAGES
from mmseg_maskformer.converters import convert_hf_mask2former

LOGIT_RTOL = 1e-4


def tiny_swin(window_size=3, **overrides) -> SwinConfig:
    return SwinConfig(**{**dict(embed_dim=32, depths=[2, 2, 3, 2], num_heads=[1, 2, 4, 8],
                                window_size=window_size, image_size=64, out_features=STAGES),
                         **overrides})


@pytest.mark.parametrize('overrides', [dict(), dict(hidden_dim=64, enforce_input_projection=True)],
                         ids=['r50', 'input-projection'])
def test_converted_logits_match_hf(overrides):
    hf_model = tiny_hf_mask2former(**overrides)
    model_cfg, state_dict = convert_hf_mask2former(hf_model)
    model = MODELS.build(model_cfg)
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    pixel_values = torch.randn(1, 3, 75, 101)  # not a multiple of the stride
    with torch.no_grad():
        out = hf_model(pixel_values, output_auxiliary_logits=True)
        all_cls, all_masks = model.decode_head(model.extract_feat(pixel_values))
    want_cls = [aux['class_queries_logits'] for aux in out.auxiliary_logits] + [
        out.class_queries_logits]
    want_masks = [aux['masks_queries_logits'] for aux in out.auxiliary_logits] + [
        out.masks_queries_logits]
    assert len(all_cls) == len(want_cls) == 4
    for got, want in zip(all_cls, want_cls):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    for got, want in zip(all_masks, want_masks):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert model_cfg['decode_head']['num_points'] == hf_model.config.train_num_points


def test_unsupported_configs_name_the_field():
    with pytest.raises(ValueError, match='pre_norm=True'):
        convert_hf_mask2former(tiny_hf_mask2former(pre_norm=True))
    with pytest.raises(TypeError, match='Mask2FormerForUniversalSegmentation'):
        convert_hf_mask2former(torch.nn.Linear(1, 1))
    assert STAGES == ['stage1', 'stage2', 'stage3', 'stage4']


def test_convert_checkpoint_tool_detects_mask2former(tmp_path):
    hf_model = tiny_hf_mask2former(seed=3, id2label={i: f'class_{i}' for i in range(5)})
    hf_dir = tmp_path / 'mask2former-tiny'
    hf_model.save_pretrained(hf_dir)
    out_dir = tmp_path / 'mmseg'
    load_tool('convert_checkpoint').main([str(hf_dir), str(out_dir)])
    model = init_model(str(out_dir / 'mask2former-tiny.py'),
                       str(out_dir / 'mask2former-tiny.pth'), device='cpu')
    assert type(model.decode_head).__name__ == 'Mask2FormerHead'
    assert model.dataset_meta['classes'] == tuple(f'class_{i}' for i in range(5))
    pixel_values = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        want = hf_model(pixel_values).masks_queries_logits
        got = model.decode_head.last_layer_logits(model.extract_feat(pixel_values))[1]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('window_size', [3, 12], ids=['window3', 'window12-like-swin-b'])
def test_swin_converted_logits_match_hf(window_size, record_property):
    hf_model = tiny_hf_mask2former(seed=1, backbone=tiny_swin(window_size))
    model_cfg, state_dict = convert_hf_mask2former(hf_model)
    assert model_cfg['backbone']['type'] == 'SwinTransformer'
    assert model_cfg['decode_head']['type'] == 'mmseg_maskformer.Mask2FormerHead'
    model = MODELS.build(model_cfg)
    model.load_state_dict(state_dict, strict=True)
    model.eval()
    # Neither size a multiple of the stride (32) or the window; 64x64 one that is.
    for size in ((75, 101), (64, 64)):
        pixel_values = torch.randn(1, 3, *size, generator=torch.Generator().manual_seed(2))
        errors = mask2former_rel_errors(model, hf_model, pixel_values)
        for kind, rel in errors.items():
            record_property(f'swin-w{window_size}{size}.{kind}_logits_rel_diff', rel)
            print(f'swin window {window_size} {size} {kind} logits max rel diff: {rel:.3g}')
            assert rel <= LOGIT_RTOL, (size, kind, rel)


def test_unsupported_swin_field_is_named():
    with pytest.raises(ValueError, match='use_absolute_embeddings=True'):
        convert_hf_mask2former(tiny_hf_mask2former(
            backbone=tiny_swin(use_absolute_embeddings=True)))
