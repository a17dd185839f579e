"""Tiny random HF MaskFormers and their mmseg conversions, shared by the converter tests."""
import torch
import torch.nn as nn
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from transformers import MaskFormerConfig, MaskFormerForInstanceSegmentation, ResNetConfig

import mmseg_maskformer.models  # noqa: F401  (registers the scope)
from mmseg_maskformer.converters import convert_hf_maskformer

NUM_LABELS = 5
STAGES = ['stage1', 'stage2', 'stage3', 'stage4']
# HF's GroupNorm has 32 groups: FPN and mask widths must be multiples of 32.
TINY_BACKBONE = dict(embedding_size=16, hidden_sizes=[32, 64, 128, 256], depths=[3, 4, 6, 3],
                     out_features=STAGES)
TINY_DECODER = dict(d_model=32, decoder_layers=3, decoder_attention_heads=4, decoder_ffn_dim=64,
                    num_queries=10)

# Layouts the oracle tests cover.
CASES = {
    # ResNet-50 layout, 2048 -> d_model input projection, 3 decoder layers.
    'r50': dict(),
    # stem as wide as stage 1 (no stage-1 projection shortcut), d_model equal to the stride-32 width
    # (no input projection), FPN wider than the mask features.
    'r101-no-shortcut-no-proj': dict(
        backbone=dict(depths=[3, 4, 23, 3], embedding_size=32),
        decoder=dict(d_model=256, decoder_attention_heads=8, decoder_ffn_dim=96, num_queries=12),
        fpn_feature_size=64, num_labels=7),
    'r152-6-layers': dict(backbone=dict(depths=[3, 8, 36, 3]),
                          decoder=dict(decoder_layers=6, d_model=64, decoder_attention_heads=2)),
}


def tiny_hf_config(backbone=None, decoder=None, **overrides) -> MaskFormerConfig:
    """``backbone``: ResNetConfig fields over ``TINY_BACKBONE``, or a whole backbone config."""
    if backbone is None or isinstance(backbone, dict):
        backbone = ResNetConfig(**{**TINY_BACKBONE, **(backbone or {})})
    kwargs = dict(fpn_feature_size=32, mask_feature_size=32, num_labels=NUM_LABELS,
                  use_auxiliary_loss=False)
    kwargs.update(overrides)
    decoder = dict(model_type='detr', **{**TINY_DECODER, **(decoder or {})})
    return MaskFormerConfig(backbone_config=backbone, decoder_config=decoder, **kwargs)


@torch.no_grad()
def randomise(model: nn.Module) -> nn.Module:
    """Give every norm non-trivial statistics and affine parameters and every bias a value.

    HF initialises BN weights ~N(0, 0.02) with running stats 0 / 1, norms' biases and most linear
    biases at zero; a mapping that swapped or dropped any of them would go unnoticed.
    """
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            module.weight.uniform_(0.5, 1.5)
            module.bias.normal_(0, 0.1)
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.num_batches_tracked.fill_(7)
        elif isinstance(module, (nn.Linear, nn.Conv2d)) and module.bias is not None:
            module.bias.normal_(0, 0.1)
    return model


def tiny_hf_model(seed: int = 0, **config_kwargs) -> MaskFormerForInstanceSegmentation:
    torch.manual_seed(seed)
    return randomise(MaskFormerForInstanceSegmentation(tiny_hf_config(**config_kwargs))).eval()


def build_converted(hf_model) -> nn.Module:
    """Our EncoderDecoder, built by mmseg from the converted config, weights loaded strictly."""
    model_cfg, state_dict = convert_hf_maskformer(hf_model)
    model = MODELS.build(model_cfg)
    model.load_state_dict(state_dict, strict=True)
    return model.eval()


@torch.no_grad()
def our_logits(model, pixel_values: torch.Tensor):
    """Per-layer class (L, B, Q, K+1) and mask (L, B, Q, H/4, W/4) logits."""
    return model.decode_head(model.extract_feat(pixel_values))


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a - b).abs().max().item()


def sample_with_gt(sem_seg: torch.Tensor) -> SegDataSample:
    sample = SegDataSample()
    sample.gt_sem_seg = PixelData(data=sem_seg[None].long())
    shape = tuple(sem_seg.shape)
    sample.set_metainfo(dict(img_shape=shape, pad_shape=shape, ori_shape=shape))
    return sample
