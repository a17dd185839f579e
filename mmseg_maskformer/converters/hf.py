"""Hugging Face ``MaskFormerForInstanceSegmentation`` (ResNet backbone) -> MMSegmentation.

HF's MaskFormer follows the official module structure, which our ``EncoderDecoder`` (mmseg
``ResNet`` + :class:`~mmseg_maskformer.models.MaskFormerHead`) reproduces, so the conversion is a
renaming table. The one reshaping: HF's DETR attention keeps separate q/k/v projections, ours is
``nn.MultiheadAttention``, whose ``in_proj`` packs them as cat(q, k, v).
"""
import warnings
from typing import Dict, Iterator, Optional, Sequence, Tuple, Union

import torch
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

# Our key -> HF key, or a tuple of HF keys concatenated along dim 0.
Source = Union[str, Tuple[str, ...]]
KeyMap = Dict[str, Source]

STAGES = ['stage1', 'stage2', 'stage3', 'stage4']
# Blocks per stage -> ``depth`` of mmseg's ResNet (its ``arch_settings`` for bottleneck blocks;
# spelled out so that converting does not import all of ``mmseg.models``).
BOTTLENECK_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}
BOTTLENECK_EXPANSION = 4

# (HF config field, value the converted model needs). Checked in order: the backbone type first,
# since the other backbone fields exist only on a ResNetConfig.
REQUIRED_FIELDS = (
    ('backbone_config.model_type', 'resnet'),
    ('backbone_config.layer_type', 'bottleneck'),
    ('backbone_config.hidden_act', 'relu'),
    ('backbone_config.num_channels', 3),
    # mmseg ResNet style='pytorch' strides the 3x3 conv and never the first stage.
    ('backbone_config.downsample_in_bottleneck', False),
    ('backbone_config.downsample_in_first_stage', False),
    # The pixel decoder of the official model reads all four stages (strides 4..32).
    ('backbone_config.out_features', STAGES),
    ('decoder_config.model_type', 'detr'),
    ('decoder_config.activation_function', 'relu'),
)

LINEAR = ('weight', 'bias')  # also the affine parameters of GroupNorm and LayerNorm
BATCH_NORM = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')

HF_BACKBONE = 'model.pixel_level_module.encoder'
HF_PIXEL_DECODER = 'model.pixel_level_module.decoder'
HF_TRANSFORMER = 'model.transformer_module'
# Derived from config values (``no_object_weight``), not weights of the network.
HF_IGNORED_KEYS = ('criterion.empty_weight', )

ATTENTIONS = (('self_attn', 'self_attn'), ('cross_attn', 'encoder_attn'))
DECODER_LAYER_PARTS = (
    ('norm1', 'self_attn_layer_norm'),
    ('norm2', 'encoder_attn_layer_norm'),
    ('norm3', 'final_layer_norm'),
    ('ffn.linear1', 'mlp.fc1'),
    ('ffn.linear2', 'mlp.fc2'),
)
MASK_EMBED_LAYERS = 3


def convert_hf_maskformer(hf_model,
                          image_mean: Optional[Sequence[float]] = None,
                          image_std: Optional[Sequence[float]] = None) -> Tuple[dict, dict]:
    """Convert a transformers ``MaskFormerForInstanceSegmentation`` with a bottleneck ResNet.

    Args:
        hf_model: the HF model (any weights; it is not modified).
        image_mean, image_std: the HF image processor's normalisation, on the [0, 1] scale; its
            default ImageNet values when ``None``.

    Returns:
        ``(model_cfg, state_dict)``: an mmseg ``EncoderDecoder`` config (plain dict) and a state
        dict that loads into ``MODELS.build(model_cfg)`` with ``strict=True``.

    Raises:
        TypeError: ``hf_model`` is not a ``MaskFormerForInstanceSegmentation``.
        ValueError: the HF config has no equivalent here; the message names the field.
    """
    # Loading HF's modeling code takes seconds: pay for it only when converting.
    from transformers import MaskFormerForInstanceSegmentation
    if not isinstance(hf_model, MaskFormerForInstanceSegmentation):
        raise TypeError('expected a transformers MaskFormerForInstanceSegmentation, got '
                        f'{type(hf_model).__name__}')
    config = hf_model.config
    check_supported(config)
    model_cfg = model_config(config, image_mean or IMAGENET_DEFAULT_MEAN,
                             image_std or IMAGENET_DEFAULT_STD)
    hf_state = hf_model.state_dict()
    key_map = dict(key_pairs(config, hf_state.keys()))
    return model_cfg, convert_state_dict(hf_state, key_map)


def check_supported(config) -> None:
    """Raise ``ValueError`` naming the first HF config field the converted model cannot match."""
    for field, required in REQUIRED_FIELDS:
        value = _field(config, field)
        if _normalise(value) != _normalise(required):
            raise ValueError(f'cannot convert HF MaskFormer: {field}={value!r}, '
                             f'only {required!r} is supported')
    backbone = config.backbone_config
    depths = tuple(backbone.depths)
    if depths not in BOTTLENECK_DEPTHS:
        supported = ', '.join(f'{list(d)} (ResNet-{n})' for d, n in BOTTLENECK_DEPTHS.items())
        raise ValueError(f'cannot convert HF MaskFormer: backbone_config.depths={list(depths)} has '
                         f'no mmseg ResNet; supported bottleneck depths are {supported}')
    # mmseg ResNet widths are base_channels * 2**i * 4 (bottleneck expansion).
    base = backbone.hidden_sizes[0] // BOTTLENECK_EXPANSION
    expected = [base * 2**i * BOTTLENECK_EXPANSION for i in range(len(depths))]
    if list(backbone.hidden_sizes) != expected:
        raise ValueError(f'cannot convert HF MaskFormer: backbone_config.hidden_sizes='
                         f'{list(backbone.hidden_sizes)}; mmseg ResNet needs widths doubling per '
                         f'stage from a multiple of {BOTTLENECK_EXPANSION}, e.g. {expected}')
    if getattr(config.decoder_config, 'auxiliary_loss', False):
        warnings.warn('decoder_config.auxiliary_loss=True: HF then feeds the LayerNorm-ed output '
                      'of every decoder layer into the next one; the converted model follows the '
                      'official MaskFormer (normed copies only for deep supervision), so its '
                      'outputs will differ from this HF model\'s')


def model_config(config, image_mean: Sequence[float], image_std: Sequence[float]) -> dict:
    """The mmseg ``EncoderDecoder`` config of a (supported) HF MaskFormer config."""
    backbone = config.backbone_config
    decoder = config.decoder_config
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            # HF processors rescale to [0, 1] before normalising; mmseg normalises 0..255 pixels.
            mean=[round(m * 255, 6) for m in image_mean],
            std=[round(s * 255, 6) for s in image_std],
            # mmseg loads images as BGR, HF models are trained on RGB.
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255),
        backbone=dict(
            type='ResNet',
            depth=BOTTLENECK_DEPTHS[tuple(backbone.depths)],
            in_channels=backbone.num_channels,
            stem_channels=backbone.embedding_size,
            base_channels=backbone.hidden_sizes[0] // BOTTLENECK_EXPANSION,
            num_stages=4,
            out_indices=(0, 1, 2, 3),
            dilations=(1, 1, 1, 1),
            strides=(1, 2, 2, 2),
            norm_cfg=dict(type='BN', requires_grad=True),
            norm_eval=True,
            style='pytorch',
            contract_dilation=True),
        decode_head=dict(
            type='mmseg_maskformer.MaskFormerHead',
            in_channels=list(backbone.hidden_sizes),
            in_index=[0, 1, 2, 3],
            num_classes=config.num_labels,
            num_queries=decoder.num_queries,
            pixel_decoder=dict(
                type='BasePixelDecoder',
                feat_channels=config.fpn_feature_size,
                norm_cfg=dict(type='GN', num_groups=32),
                act_cfg=dict(type='ReLU')),
            mask_channels=config.mask_feature_size,
            # One rate for attention weights and FFN, as in the official layer; HF's separate
            # attention_dropout / activation_dropout only matter in training.
            transformer_decoder=dict(
                num_layers=decoder.decoder_layers,
                embed_dims=decoder.d_model,
                num_heads=decoder.decoder_attention_heads,
                feedforward_channels=decoder.decoder_ffn_dim,
                dropout=decoder.dropout),
            # HF projects the stride-32 feature exactly when its width differs from d_model.
            enforce_input_project=False,
            # HF's matcher: class cost 1, mask and dice costs equal to the loss weights.
            matcher=dict(type='HungarianMatcher', cost_class=1.0, cost_focal=config.mask_weight,
                         cost_dice=config.dice_weight),
            criterion=dict(class_weight=config.cross_entropy_weight, mask_weight=config.mask_weight,
                           dice_weight=config.dice_weight,
                           no_object_weight=config.no_object_weight),
            deep_supervision=config.use_auxiliary_loss,
            ignore_index=255),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def key_pairs(config, hf_keys) -> Iterator[Tuple[str, Source]]:
    """(our key, HF source) for every tensor of the converted model."""
    hf_keys = set(hf_keys)
    yield from _backbone_pairs(config.backbone_config, hf_keys)
    yield from _pixel_decoder_pairs(len(STAGES))
    yield from _transformer_pairs(config.decoder_config.decoder_layers, hf_keys)


def convert_state_dict(hf_state: Dict[str, torch.Tensor],
                       key_map: KeyMap) -> Dict[str, torch.Tensor]:
    """Apply ``key_map``; every HF tensor must be used, so no weight is silently dropped."""
    used = {k for src in key_map.values() for k in _as_tuple(src)}
    missing = sorted(used - hf_state.keys())
    if missing:
        raise ValueError(f'HF state dict lacks {len(missing)} expected keys, e.g. {missing[:5]}')
    unused = sorted(hf_state.keys() - used - set(HF_IGNORED_KEYS))
    if unused:
        raise ValueError(f'{len(unused)} HF weights have no counterpart in the converted model, '
                         f'e.g. {unused[:5]}')
    return {
        ours: torch.cat([hf_state[k] for k in src])
        if isinstance(src, tuple) else hf_state[src].clone()
        for ours, src in key_map.items()
    }


def _backbone_pairs(backbone, hf_keys) -> Iterator[Tuple[str, Source]]:
    hf = f'{HF_BACKBONE}.embedder.embedder'
    yield from _conv_norm('backbone.conv1', 'backbone.bn1', hf, BATCH_NORM)
    for stage, num_blocks in enumerate(backbone.depths):
        for block in range(num_blocks):
            ours = f'backbone.layer{stage + 1}.{block}'
            hf = f'{HF_BACKBONE}.encoder.stages.{stage}.layers.{block}'
            for conv in range(3):
                yield from _conv_norm(f'{ours}.conv{conv + 1}', f'{ours}.bn{conv + 1}',
                                      f'{hf}.layer.{conv}', BATCH_NORM)
            # Both libraries add the projection shortcut under the same condition (stride or width
            # change), so its presence in HF decides.
            if f'{hf}.shortcut.convolution.weight' in hf_keys:
                yield from _conv_norm(f'{ours}.downsample.0', f'{ours}.downsample.1',
                                      f'{hf}.shortcut', BATCH_NORM)


def _pixel_decoder_pairs(num_levels: int) -> Iterator[Tuple[str, Source]]:
    ours = 'decode_head.pixel_decoder'
    hf = f'{HF_PIXEL_DECODER}.fpn'
    yield from _conv_norm(f'{ours}.last_feat_conv.conv', f'{ours}.last_feat_conv.gn', f'{hf}.stem',
                          LINEAR, hf_names=('0', '1'))
    # HF's FPN layers run coarse to fine; our lateral/output convs are indexed fine to coarse.
    for hf_index in range(num_levels - 1):
        level = num_levels - 2 - hf_index
        for ours_part, hf_part in (('lateral_convs', 'proj'), ('output_convs', 'block')):
            module = f'{ours}.{ours_part}.{level}'
            yield from _conv_norm(f'{module}.conv', f'{module}.gn',
                                  f'{hf}.layers.{hf_index}.{hf_part}', LINEAR, hf_names=('0', '1'))
    yield from _params(f'{ours}.mask_feature', f'{HF_PIXEL_DECODER}.mask_projection', LINEAR)


def _transformer_pairs(num_layers: int, hf_keys) -> Iterator[Tuple[str, Source]]:
    head = 'decode_head'
    if f'{HF_TRANSFORMER}.input_projection.weight' in hf_keys:
        yield from _params(f'{head}.input_proj', f'{HF_TRANSFORMER}.input_projection', LINEAR)
    yield f'{head}.query_embed.weight', f'{HF_TRANSFORMER}.queries_embedder.weight'
    for layer in range(num_layers):
        ours = f'{head}.transformer_decoder.layers.{layer}'
        hf = f'{HF_TRANSFORMER}.decoder.layers.{layer}'
        for ours_attn, hf_attn in ATTENTIONS:
            for param in LINEAR:
                yield (f'{ours}.{ours_attn}.in_proj_{param}',
                       tuple(f'{hf}.{hf_attn}.{p}_proj.{param}' for p in 'qkv'))
            yield from _params(f'{ours}.{ours_attn}.out_proj', f'{hf}.{hf_attn}.o_proj', LINEAR)
        for ours_part, hf_part in DECODER_LAYER_PARTS:
            yield from _params(f'{ours}.{ours_part}', f'{hf}.{hf_part}', LINEAR)
    yield from _params(f'{head}.transformer_decoder.norm', f'{HF_TRANSFORMER}.decoder.layernorm',
                       LINEAR)
    yield from _params(f'{head}.cls_embed', 'class_predictor', LINEAR)
    for layer in range(MASK_EMBED_LAYERS):
        yield from _params(f'{head}.mask_embed.layers.{layer}', f'mask_embedder.{layer}.0', LINEAR)


def _conv_norm(ours_conv: str, ours_norm: str, hf: str, norm_params: Sequence[str],
               hf_names: Tuple[str, str] = ('convolution', 'normalization')
               ) -> Iterator[Tuple[str, Source]]:
    """A bias-free conv followed by a norm; HF names both inside one module ``hf``."""
    hf_conv, hf_norm = (f'{hf}.{name}' for name in hf_names)
    yield f'{ours_conv}.weight', f'{hf_conv}.weight'
    yield from _params(ours_norm, hf_norm, norm_params)


def _params(ours: str, hf: str, names: Sequence[str]) -> Iterator[Tuple[str, Source]]:
    for name in names:
        yield f'{ours}.{name}', f'{hf}.{name}'


def _as_tuple(src: Source) -> Tuple[str, ...]:
    return src if isinstance(src, tuple) else (src, )


def _field(config, path: str):
    for name in path.split('.'):
        config = getattr(config, name, None)
    return config


def _normalise(value):
    return list(value) if isinstance(value, tuple) else value
