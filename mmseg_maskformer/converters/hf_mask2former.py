"""Hugging Face ``Mask2FormerForUniversalSegmentation`` (bottleneck ResNet backbone) -> our
``MaskFormerSegmentor`` with a :class:`~mmseg_maskformer.models.Mask2FormerHead`.

A renaming table, as for MaskFormer (:mod:`.hf`): the backbone keys are those of HF's MaskFormer
(``model.pixel_level_module.encoder``), the pixel decoder and transformer module map one to one,
HF's separate self-attention q/k/v projections are concatenated into ``in_proj_weight``.
"""
from typing import Dict, Iterator, Optional, Sequence, Tuple

from .hf import (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, REQUIRED_BACKBONE_FIELDS,
                 _check_resnet_widths, _field, _normalise, backbone_config, backbone_kind,
                 data_preprocessor_config, stage_channels)
from .key_mapping import HF_BACKBONE, LINEAR, Source, apply_key_map, resnet_sources

HF_PIXEL_DECODER = 'model.pixel_level_module.decoder'
HF_TRANSFORMER = 'model.transformer_module'
OURS_PIXEL_DECODER = 'decode_head.pixel_decoder'
OURS_DECODER = 'decode_head.transformer_decoder'
# (HF config field, value the converted model needs).
REQUIRED_FIELDS = (
    ('pre_norm', False),  # the official decoder is post-norm
    ('common_stride', 4),
    ('feature_strides', [4, 8, 16, 32]),
    ('activation_function', 'relu'),
)
HF_IGNORED_KEYS = ('criterion.empty_weight', )


def check_supported(config) -> None:
    """Raise ``ValueError`` naming the first HF config field the converted model cannot match."""
    kind = backbone_kind(config)
    if kind != 'resnet':
        raise ValueError(f'cannot convert HF Mask2Former: backbone_config.model_type={kind!r}, '
                         "only 'resnet' is supported so far")
    for field, required in REQUIRED_FIELDS + REQUIRED_BACKBONE_FIELDS['resnet']:
        value = _field(config, field)
        if _normalise(value) != _normalise(required):
            raise ValueError(f'cannot convert HF Mask2Former: {field}={value!r} is not '
                             f'supported, only {required!r}')
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
            matcher=dict(type='HungarianMatcher', cost_class=config.class_weight,
                         cost_focal=config.mask_weight, cost_dice=config.dice_weight,
                         focal_alpha=-1, focal_gamma=0.0),
            criterion=dict(class_weight=config.class_weight, mask_weight=config.mask_weight,
                           dice_weight=config.dice_weight,
                           no_object_weight=config.no_object_weight, focal_alpha=-1,
                           focal_gamma=0.0),
            num_points=config.train_num_points,
            deep_supervision=config.use_auxiliary_loss,
            ignore_index=255),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def _linear(ours: str, hf: str) -> Iterator[Tuple[str, Source]]:
    for name in LINEAR:
        yield f'{ours}.{name}', f'{hf}.{name}'


def head_sources(config, hf_keys) -> Iterator[Tuple[str, Source]]:
    """(our key, HF source) for every tensor of the Mask2Former head."""
    ours, hf = OURS_PIXEL_DECODER, HF_PIXEL_DECODER
    yield f'{ours}.level_embed', f'{hf}.level_embed'
    for level in range(3):
        yield from _linear(f'{ours}.input_projs.{level}.conv', f'{hf}.input_projections.{level}.0')
        yield from _linear(f'{ours}.input_projs.{level}.gn', f'{hf}.input_projections.{level}.1')
    for layer in range(config.encoder_layers):
        ours_layer, hf_layer = f'{ours}.encoder.{layer}', f'{hf}.encoder.layers.{layer}'
        for part in ('sampling_offsets', 'attention_weights', 'value_proj', 'output_proj'):
            yield from _linear(f'{ours_layer}.self_attn.{part}', f'{hf_layer}.self_attn.{part}')
        for part_ours, part_hf in (('norm1', 'self_attn_layer_norm'), ('ffn.0', 'fc1'),
                                   ('ffn.3', 'fc2'), ('norm2', 'final_layer_norm')):
            yield from _linear(f'{ours_layer}.{part_ours}', f'{hf_layer}.{part_hf}')
    yield from _linear(f'{ours}.mask_feature', f'{hf}.mask_projection')
    yield f'{ours}.lateral_conv.conv.weight', f'{hf}.adapter_1.0.weight'
    yield from _linear(f'{ours}.lateral_conv.gn', f'{hf}.adapter_1.1')
    yield f'{ours}.output_conv.conv.weight', f'{hf}.layer_1.0.weight'
    yield from _linear(f'{ours}.output_conv.gn', f'{hf}.layer_1.1')

    ours, hf = OURS_DECODER, HF_TRANSFORMER
    yield f'{ours}.query_embed.weight', f'{hf}.queries_embedder.weight'
    yield f'{ours}.query_feat.weight', f'{hf}.queries_features.weight'
    yield f'{ours}.level_embed.weight', f'{hf}.level_embed.weight'
    for level in range(3):
        if f'{hf}.input_projections.{level}.weight' in hf_keys:
            yield from _linear(f'{ours}.input_projs.{level}', f'{hf}.input_projections.{level}')
    for layer in range(config.decoder_layers - 1):
        ours_layer, hf_layer = f'{ours}.layers.{layer}', f'{hf}.decoder.layers.{layer}'
        for name in ('in_proj_weight', 'in_proj_bias'):
            yield f'{ours_layer}.cross_attn.{name}', f'{hf_layer}.cross_attn.{name}'
        yield from _linear(f'{ours_layer}.cross_attn.out_proj', f'{hf_layer}.cross_attn.out_proj')
        for name, ours_name in (('weight', 'in_proj_weight'), ('bias', 'in_proj_bias')):
            yield f'{ours_layer}.self_attn.{ours_name}', tuple(
                f'{hf_layer}.self_attn.{p}_proj.{name}' for p in 'qkv')
        yield from _linear(f'{ours_layer}.self_attn.out_proj', f'{hf_layer}.self_attn.out_proj')
        for part_ours, part_hf in (('norm1', 'cross_attn_layer_norm'),
                                   ('norm2', 'self_attn_layer_norm'), ('ffn.0', 'fc1'),
                                   ('ffn.3', 'fc2'), ('norm3', 'final_layer_norm')):
            yield from _linear(f'{ours_layer}.{part_ours}', f'{hf_layer}.{part_hf}')
    yield from _linear(f'{ours}.decoder_norm', f'{hf}.decoder.layernorm')
    for layer in range(3):
        yield from _linear(f'{ours}.mask_embed.layers.{layer}',
                           f'{hf}.decoder.mask_predictor.mask_embedder.{layer}.0')
    yield from _linear(f'{ours}.cls_embed', 'class_predictor')


def key_pairs(config, hf_keys) -> Iterator[Tuple[str, Source]]:
    """(our key, HF source) for every tensor of the converted model."""
    hf_keys = set(hf_keys)
    backbone = config.backbone_config
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
    """Convert a transformers ``Mask2FormerForUniversalSegmentation`` with a bottleneck ResNet.

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
    key_map = dict(key_pairs(config, hf_state.keys()))
    return model_cfg, apply_key_map(hf_state, key_map, 'HF state dict', HF_IGNORED_KEYS)


__all__ = ['check_supported', 'convert_hf_mask2former', 'model_config']
