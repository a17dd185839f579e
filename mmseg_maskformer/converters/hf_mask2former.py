"""Hugging Face ``Mask2FormerForUniversalSegmentation`` (bottleneck ResNet or Swin backbone) ->
our ``MaskFormerSegmentor`` with a :class:`~mmseg_maskformer.models.Mask2FormerHead`.

A renaming table, as for MaskFormer (:mod:`.hf`): the ResNet keys are those of HF's MaskFormer
(``model.pixel_level_module.encoder``); a Swin backbone is transformers' ``SwinBackbone`` (separate
q/k/v projections, packed here into mmseg's ``qkv``; its stage outputs before patch merging, each
through ``hidden_states_norms.stage{i}``, as the official ``D2SwinTransformer`` and mmseg's Swin);
the head maps one to one (:func:`~.key_mapping.mask2former_head_sources`, shared with the official
converter), HF's separate self-attention q/k/v projections concatenated into ``in_proj_weight``.
"""
import math
from typing import Dict, Iterator, Optional, Sequence, Tuple

import torch

from .hf import (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, REQUIRED_BACKBONE_FIELDS,
                 _check_resnet_widths, backbone_config, backbone_kind, check_fields,
                 data_preprocessor_config, stage_channels)
from .key_mapping import (HF_BACKBONE, HF_TRANSFORMER, LINEAR, MASK2FORMER_LEVELS, OURS_BACKBONE,
                          Derived, Source, apply_key_map, mask2former_head_sources,
                          resnet_sources, unfold_order_norm, unfold_order_reduction)

# (HF config field, value the converted model needs).
REQUIRED_FIELDS = (
    ('pre_norm', False),  # the official decoder is post-norm
    ('common_stride', 4),
    ('feature_strides', [4, 8, 16, 32]),
    ('activation_function', 'relu'),
)
HF_IGNORED_KEYS = ('criterion.empty_weight', )
HF_SWIN = f'{HF_BACKBONE}.swin'
# SwinModel's final LayerNorm: SwinBackbone returns the stage outputs through its
# hidden_states_norms instead (the official model has no such norm).
HF_SWIN_IGNORED_KEYS = tuple(f'{HF_SWIN}.layernorm.{name}' for name in LINEAR)
# Swin block modules besides attention: (ours, HF SwinLayer); 'proj' is inside ``attn.w_msa``.
HF_SWIN_BLOCK_PARTS = (
    ('norm1', 'layernorm_before'),
    ('attn.w_msa.proj', 'attention.o_proj'),
    ('norm2', 'layernorm_after'),
    ('ffn.layers.0.0', 'mlp.fc1'),
    ('ffn.layers.1', 'mlp.fc2'),
)
RELATIVE_POSITION_INDEX = 'relative_position_index'


def check_supported(config) -> None:
    """Raise ``ValueError`` naming the first HF config field the converted model cannot match."""
    kind = backbone_kind(config)
    if kind not in REQUIRED_BACKBONE_FIELDS:
        raise ValueError(f'cannot convert HF Mask2Former: backbone_config.model_type={kind!r}, '
                         f'only {sorted(REQUIRED_BACKBONE_FIELDS)} are supported')
    check_fields(config, REQUIRED_FIELDS + REQUIRED_BACKBONE_FIELDS[kind], 'Mask2Former')
    if kind == 'resnet':
        _check_resnet_widths(config.backbone_config)


def model_config(config, image_mean: Sequence[float], image_std: Sequence[float]) -> dict:
    """The ``MaskFormerSegmentor`` config of a (supported) HF Mask2Former config."""
    return dict(
        type='mmseg_maskformer.MaskFormerSegmentor',
        data_preprocessor=data_preprocessor_config(image_mean, image_std),
        backbone=backbone_config(config.backbone_config),
        decode_head=dict(
            type='mmseg_maskformer.Mask2FormerHead',
            in_channels=stage_channels(config.backbone_config),
            in_index=[0, 1, 2, 3],
            num_classes=config.num_labels,
            num_queries=config.num_queries,
            pixel_decoder=dict(type='MSDeformAttnPixelDecoder', feat_channels=config.feature_size,
                               num_encoder_layers=config.encoder_layers,
                               num_heads=config.num_attention_heads,
                               feedforward_channels=config.encoder_feedforward_dim,
                               dropout=config.dropout),
            mask_channels=config.mask_feature_size,
            # HF counts the prediction before the first layer as a decoder layer.
            transformer_decoder=dict(num_layers=config.decoder_layers - 1,
                                     embed_dims=config.hidden_dim,
                                     num_heads=config.num_attention_heads,
                                     feedforward_channels=config.dim_feedforward,
                                     dropout=config.dropout),
            enforce_input_project=config.enforce_input_projection,
            loss_cls=dict(type='CrossEntropyLoss', loss_weight=config.class_weight,
                          no_object_weight=config.no_object_weight),
            loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True,
                           loss_weight=config.mask_weight),
            loss_dice=dict(type='DiceLoss', loss_weight=config.dice_weight, eps=1.0),
            matcher=dict(type='HungarianMatcher', match_costs=[
                dict(type='ClassificationCost', weight=config.class_weight),
                dict(type='CrossEntropyLossCost', weight=config.mask_weight, use_sigmoid=True),
                dict(type='DiceCost', weight=config.dice_weight, eps=1.0)]),
            num_points=config.train_num_points,
            deep_supervision=config.use_auxiliary_loss,
            ignore_index=255),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def head_sources(config, hf_keys) -> Iterator[Tuple[str, Source]]:
    """(our key, HF source) for every tensor of the Mask2Former head."""
    # HF projects the decoder inputs exactly when the pixel-decoder width differs from hidden_dim
    # or enforce_input_projection is set.
    levels = [level for level in range(MASK2FORMER_LEVELS)
              if f'{HF_TRANSFORMER}.input_projections.{level}.weight' in hf_keys]
    # HF counts the prediction before the first layer as a decoder layer.
    for ours, hf, _ in mask2former_head_sources(config.encoder_layers, config.decoder_layers - 1,
                                                levels):
        yield ours, hf


def swin_sources(depths: Sequence[int]) -> Iterator[Tuple[str, Source]]:
    """(our key, HF source) for mmseg ``SwinTransformer`` from transformers' ``SwinBackbone``.

    The packing of q/k/v and the patch-merging reordering are those of the official Swin
    (:func:`~.key_mapping.swin_sources`): HF's ``SwinPatchMerging`` concatenates the 2x2
    neighbours in the official order. HF's ``relative_position_index`` is a non-persistent
    buffer of shape (Wh*Ww*Wh*Ww,), mmseg's a persistent (Wh*Ww, Wh*Ww) one.
    """
    ours, hf = OURS_BACKBONE, HF_SWIN
    for name in LINEAR:
        yield (f'{ours}.patch_embed.projection.{name}',
               f'{hf}.embeddings.patch_embeddings.projection.{name}')
        yield f'{ours}.patch_embed.norm.{name}', f'{hf}.embeddings.norm.{name}'
    for stage, num_blocks in enumerate(depths):
        ours_stage, hf_stage = f'{ours}.stages.{stage}', f'{hf}.encoder.layers.{stage}'
        for block in range(num_blocks):
            ours_block, hf_block = f'{ours_stage}.blocks.{block}', f'{hf_stage}.blocks.{block}'
            attn = f'{hf_block}.attention'
            for name in LINEAR:
                yield (f'{ours_block}.attn.w_msa.qkv.{name}',
                       tuple(f'{attn}.{p}_proj.{name}' for p in 'qkv'))
                for ours_part, hf_part in HF_SWIN_BLOCK_PARTS:
                    yield f'{ours_block}.{ours_part}.{name}', f'{hf_block}.{hf_part}.{name}'
            yield (f'{ours_block}.attn.w_msa.relative_position_bias_table',
                   f'{attn}.relative_position_bias.relative_position_bias_table')
            yield (f'{ours_block}.attn.w_msa.{RELATIVE_POSITION_INDEX}',
                   Derived((f'{attn}.relative_position_bias.{RELATIVE_POSITION_INDEX}', ),
                           _square))
        if stage < len(depths) - 1:
            yield (f'{ours_stage}.downsample.reduction.weight',
                   Derived((f'{hf_stage}.downsample.reduction.weight', ), unfold_order_reduction))
            for name in LINEAR:
                yield (f'{ours_stage}.downsample.norm.{name}',
                       Derived((f'{hf_stage}.downsample.norm.{name}', ), unfold_order_norm))
        for name in LINEAR:
            yield (f'{ours}.norm{stage}.{name}',
                   f'{HF_BACKBONE}.hidden_states_norms.stage{stage + 1}.{name}')


def _square(index: torch.Tensor) -> torch.Tensor:
    side = math.isqrt(index.numel())
    return index.reshape(side, side).clone()


def key_pairs(config, hf_keys) -> Iterator[Tuple[str, Source]]:
    """(our key, HF source) for every tensor of the converted model."""
    hf_keys = set(hf_keys)
    backbone = config.backbone_config
    if backbone_kind(config) == 'swin':
        yield from swin_sources(backbone.depths)
    else:
        shortcuts = {(stage, block) for stage, blocks in enumerate(backbone.depths)
                     for block in range(blocks)
                     if f'{HF_BACKBONE}.encoder.stages.{stage}.layers.{block}.shortcut.'
                     'convolution.weight' in hf_keys}
        for ours, hf, _ in resnet_sources(backbone.depths, shortcuts):
            yield ours, hf
    yield from head_sources(config, hf_keys)


def convert_hf_mask2former(hf_model,
                           image_mean: Optional[Sequence[float]] = None,
                           image_std: Optional[Sequence[float]] = None) -> Tuple[dict, Dict]:
    """Convert a transformers ``Mask2FormerForUniversalSegmentation`` with a bottleneck ResNet or
    a Swin backbone.

    Returns:
        ``(model_cfg, state_dict)``: a ``MaskFormerSegmentor`` config (plain dict) and a state dict
        that loads into ``MODELS.build(model_cfg)`` with ``strict=True``.

    Raises:
        TypeError: ``hf_model`` is not a ``Mask2FormerForUniversalSegmentation``.
        ValueError: the HF config has no equivalent here; the message names the field.
    """
    from transformers import Mask2FormerForUniversalSegmentation
    if not isinstance(hf_model, Mask2FormerForUniversalSegmentation):
        raise TypeError('expected a transformers Mask2FormerForUniversalSegmentation, got '
                        f'{type(hf_model).__name__}')
    config = hf_model.config
    check_supported(config)
    model_cfg = model_config(config, image_mean or IMAGENET_DEFAULT_MEAN,
                             image_std or IMAGENET_DEFAULT_STD)
    hf_state = hf_model.state_dict()
    ignored = HF_IGNORED_KEYS
    if backbone_kind(config) == 'swin':
        ignored += HF_SWIN_IGNORED_KEYS
        # Swin's relative position indices: non-persistent buffers, absent from state_dict().
        hf_state.update({name: buffer for name, buffer in hf_model.named_buffers()
                         if name.endswith(RELATIVE_POSITION_INDEX)})
    key_map = dict(key_pairs(config, hf_state.keys()))
    return model_cfg, apply_key_map(hf_state, key_map, 'HF state dict', ignored)


__all__ = ['check_supported', 'convert_hf_mask2former', 'model_config']
