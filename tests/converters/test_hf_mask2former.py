"""Converted Hugging Face Mask2Former (ResNet) models against transformers'
Mask2FormerForUniversalSegmentation: class and mask logits of every prediction set."""
import pytest
import torch
from mmseg.apis import init_model
from mmseg.registry import MODELS
from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, ResNetConfig

from cli_testing import load_tool
from hf_testing import STAGES, TINY_BACKBONE, randomise
from mmseg_maskformer.converters import convert_hf_mask2former


def tiny_hf_mask2former(seed=0, **overrides):
    torch.manual_seed(seed)
    backbone = ResNetConfig(**TINY_BACKBONE)
    kwargs = dict(backbone_config=backbone, feature_size=32, mask_feature_size=32, hidden_dim=32,
                  encoder_feedforward_dim=48, dim_feedforward=48, num_attention_heads=4,
                  encoder_layers=2, decoder_layers=4, num_queries=6, num_labels=5, dropout=0.0,
                  use_auxiliary_loss=True)
    kwargs.update(overrides)
    model = Mask2FormerForUniversalSegmentation(Mask2FormerConfig(**kwargs))
    with torch.no_grad():  # level embeddings and queries too, beyond what randomise() covers
        for name, parameter in model.named_parameters():
            if 'embed' in name or 'queries' in name:
                parameter.normal_(std=0.5)
    return randomise(model).eval()


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
