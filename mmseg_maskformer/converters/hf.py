"""Hugging Face ``MaskFormerForInstanceSegmentation`` (ResNet or Swin backbone) -> MMSegmentation.

HF's MaskFormer follows the official module structure, which our ``EncoderDecoder`` (mmseg
``ResNet`` or ``SwinTransformer`` + :class:`~mmseg_maskformer.models.MaskFormerHead`) reproduces,
so the conversion is a renaming table (:mod:`.key_mapping`, shared with the official converter).
The reshapings: HF keeps separate q/k/v projections where ours are packed as cat(q, k, v)
(``nn.MultiheadAttention.in_proj``, Swin's ``qkv``), and mmseg's Swin patch merging wants its
weights in ``nn.Unfold`` order.
"""
import itertools
import warnings
from typing import Iterator, Optional, Sequence, Tuple

from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from .key_mapping import (HF_BACKBONE, HF_TRANSFORMER, Source, apply_key_map, head_sources,
                          resnet_sources, swin_sources)

STAGES = ['stage1', 'stage2', 'stage3', 'stage4']
# Blocks per stage -> ``depth`` of mmseg's ResNet (its ``arch_settings`` for bottleneck blocks;
# spelled out so that converting does not import all of ``mmseg.models``).
BOTTLENECK_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}
BOTTLENECK_EXPANSION = 4

# (HF config field, value the converted model needs), checked in order.
REQUIRED_FIELDS = (
    ('decoder_config.model_type', 'detr'),
    ('decoder_config.activation_function', 'relu'),
)
REQUIRED_BACKBONE_FIELDS = {
    'resnet': (
        ('backbone_config.layer_type', 'bottleneck'),
        ('backbone_config.hidden_act', 'relu'),
        ('backbone_config.num_channels', 3),
        # mmseg ResNet style='pytorch' strides the 3x3 conv and never the first stage.
        ('backbone_config.downsample_in_bottleneck', False),
        ('backbone_config.downsample_in_first_stage', False),
        # The pixel decoder of the official model reads all four stages (strides 4..32).
        ('backbone_config.out_features', STAGES),
    ),
    # HF builds a MaskFormerSwinBackbone from a SwinConfig: stage outputs before patch merging,
    # each through its own LayerNorm, as the official D2SwinTransformer and mmseg's Swin.
    'swin': (
        ('backbone_config.hidden_act', 'gelu'),
        ('backbone_config.use_absolute_embeddings', False),
        ('backbone_config.num_channels', 3),
        ('backbone_config.layer_norm_eps', 1e-5),  # mmseg's LN
        ('backbone_config.depths', lambda depths: len(depths) == len(STAGES)),
        ('backbone_config.out_features', STAGES),
    ),
}
# Derived from config values (``no_object_weight``), not weights of the network.
HF_IGNORED_KEYS = ('criterion.empty_weight', )
# MaskFormerSwinModel's final LayerNorm: computed, but MaskFormerSwinBackbone returns the stage
# outputs through its hidden_states_norms instead (the official model has no such norm).
HF_SWIN_IGNORED_KEYS = tuple(f'model.pixel_level_module.encoder.model.layernorm.{name}'
                             for name in ('weight', 'bias'))


def convert_hf_maskformer(hf_model,
                          image_mean: Optional[Sequence[float]] = None,
                          image_std: Optional[Sequence[float]] = None) -> Tuple[dict, dict]:
    """Convert a transformers ``MaskFormerForInstanceSegmentation`` (bottleneck ResNet or Swin).

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
    ignored = HF_IGNORED_KEYS + (HF_SWIN_IGNORED_KEYS if backbone_kind(config) == 'swin' else ())
    return model_cfg, apply_key_map(hf_state, key_map, 'HF state dict', ignored)


def check_supported(config) -> None:
    """Raise ``ValueError`` naming the first HF config field the converted model cannot match."""
    backbone_type = backbone_kind(config)
    if backbone_type not in REQUIRED_BACKBONE_FIELDS:
        raise ValueError(f'cannot convert HF MaskFormer: backbone_config.model_type='
                         f'{backbone_type!r}, only {sorted(REQUIRED_BACKBONE_FIELDS)} are '
                         'supported')
    check_fields(config, REQUIRED_FIELDS + REQUIRED_BACKBONE_FIELDS[backbone_type], 'MaskFormer')
    if backbone_type == 'resnet':
        _check_resnet_widths(config.backbone_config)
    if getattr(config.decoder_config, 'auxiliary_loss', False):
        warnings.warn('decoder_config.auxiliary_loss=True: HF then feeds the LayerNorm-ed output '
                      'of every decoder layer into the next one; the converted model follows the '
                      'official MaskFormer (normed copies only for deep supervision), so its '
                      'outputs will differ from this HF model\'s')


def check_fields(config, fields, model_name: str) -> None:
    """Raise ``ValueError`` naming the first ``(field, required)`` of ``fields`` the HF config does
    not meet; ``required`` is the needed value or a predicate of the value."""
    for field, required in fields:
        value = _field(config, field)
        if not (required(value) if callable(required) else
                _normalise(value) == _normalise(required)):
            raise ValueError(f'cannot convert HF {model_name}: {field}={value!r} is not supported'
                             + ('' if callable(required) else f', only {required!r}'))


def backbone_kind(config) -> str:
    """'resnet', 'swin' (HF turns a SwinConfig into a MaskFormerSwinConfig when it builds the
    model), or the unsupported backbone's model type."""
    model_type = _field(config, 'backbone_config.model_type')
    return 'swin' if model_type == 'maskformer-swin' else model_type


def _check_resnet_widths(backbone) -> None:
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


def model_config(config, image_mean: Sequence[float], image_std: Sequence[float]) -> dict:
    """The ``MaskFormerSegmentor`` config (an mmseg ``EncoderDecoder``) of a HF MaskFormer."""
    backbone = config.backbone_config
    decoder = config.decoder_config
    return dict(
        type='mmseg_maskformer.MaskFormerSegmentor',
        data_preprocessor=data_preprocessor_config(image_mean, image_std),
        backbone=backbone_config(backbone),
        decode_head=dict(
            type='mmseg_maskformer.MaskFormerHead',
            in_channels=stage_channels(backbone),
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
            loss_cls=dict(type='CrossEntropyLoss', loss_weight=config.cross_entropy_weight,
                          no_object_weight=config.no_object_weight),
            loss_mask=dict(type='FocalLoss', loss_weight=config.mask_weight, alpha=0.25,
                           gamma=2.0),
            loss_dice=dict(type='DiceLoss', loss_weight=config.dice_weight, eps=1.0),
            # HF's matcher: class cost 1, mask and dice costs equal to the loss weights.
            matcher=dict(type='HungarianMatcher', match_costs=[
                dict(type='ClassificationCost', weight=1.0),
                dict(type='FocalLossCost', weight=config.mask_weight, alpha=0.25, gamma=2.0),
                dict(type='DiceCost', weight=config.dice_weight, eps=1.0)]),
            deep_supervision=config.use_auxiliary_loss,
            ignore_index=255),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))


def data_preprocessor_config(image_mean: Sequence[float], image_std: Sequence[float]) -> dict:
    """mmseg's ``SegDataPreProcessor`` doing what an HF image processor's normalisation does."""
    return dict(
        type='SegDataPreProcessor',
        # HF processors rescale to [0, 1] before normalising; mmseg normalises 0..255 pixels.
        mean=[round(m * 255, 6) for m in image_mean],
        std=[round(s * 255, 6) for s in image_std],
        # mmseg loads images as BGR, HF models are trained on RGB.
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255)


def backbone_config(backbone) -> dict:
    """mmseg ``ResNet`` or ``SwinTransformer`` config of an HF backbone config."""
    if backbone.model_type == 'resnet':
        return dict(
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
            contract_dilation=True)
    return dict(
        type='SwinTransformer',
        pretrain_img_size=backbone.image_size,
        in_channels=backbone.num_channels,
        embed_dims=backbone.embed_dim,
        patch_size=backbone.patch_size,
        window_size=backbone.window_size,
        mlp_ratio=backbone.mlp_ratio,
        depths=list(backbone.depths),
        num_heads=list(backbone.num_heads),
        strides=(backbone.patch_size, 2, 2, 2),
        out_indices=(0, 1, 2, 3),
        qkv_bias=backbone.qkv_bias,
        patch_norm=True,
        drop_rate=backbone.hidden_dropout_prob,
        attn_drop_rate=backbone.attention_probs_dropout_prob,
        drop_path_rate=backbone.drop_path_rate,
        use_abs_pos_embed=False,
        act_cfg=dict(type='GELU'),
        norm_cfg=dict(type='LN', requires_grad=True))


def stage_channels(backbone) -> list:
    if backbone.model_type == 'resnet':
        return list(backbone.hidden_sizes)
    return [backbone.embed_dim * 2**i for i in range(len(backbone.depths))]


def key_pairs(config, hf_keys) -> Iterator[Tuple[str, Source]]:
    """(our key, HF source) for every tensor of the converted model."""
    hf_keys = set(hf_keys)
    backbone = config.backbone_config
    if backbone_kind(config) == 'swin':
        triples = swin_sources(backbone.depths)
    else:
        shortcuts = {(stage, block) for stage, blocks in enumerate(backbone.depths)
                     for block in range(blocks)
                     if f'{HF_BACKBONE}.encoder.stages.{stage}.layers.{block}.shortcut.'
                     'convolution.weight' in hf_keys}
        triples = resnet_sources(backbone.depths, shortcuts)
    # HF projects the stride-32 feature exactly when its width differs from d_model.
    input_proj = f'{HF_TRANSFORMER}.input_projection.weight' in hf_keys
    num_layers = config.decoder_config.decoder_layers
    triples = itertools.chain(triples, head_sources(len(STAGES), num_layers, input_proj))
    for ours, hf, _ in triples:
        yield ours, hf


def _field(config, path: str):
    for name in path.split('.'):
        config = getattr(config, name, None)
    return config


def _normalise(value):
    return list(value) if isinstance(value, tuple) else value
