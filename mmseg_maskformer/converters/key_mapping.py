"""Renaming tables shared by the converters: how each tensor of our model is made from a source
checkpoint (Hugging Face or the official detectron2 release).

A source is a key (the tensor is copied), a tuple of keys (concatenated along dim 0, e.g. HF's
separate q/k/v projections into ``nn.MultiheadAttention.in_proj_weight``) or a :class:`Derived`
(a function of source tensors, e.g. the reordered Swin patch-merging weights, or a constant).
"""
from typing import (Callable, Dict, Iterable, Iterator, NamedTuple, Optional, Sequence, Set, Tuple,
                    Union)

import torch


class Derived(NamedTuple):
    """A tensor computed by ``function`` from the tensors at ``keys`` (none for a constant)."""
    keys: Tuple[str, ...]
    function: Callable[..., torch.Tensor]


Source = Union[str, Tuple[str, ...], Derived]
KeyMap = Dict[str, Source]

LINEAR = ('weight', 'bias')  # also the affine parameters of GroupNorm and LayerNorm
BATCH_NORM_STATS = ('weight', 'bias', 'running_mean', 'running_var')

# Decoder-layer modules: (ours, HF, official). Official names are DETR's TransformerDecoderLayer.
DECODER_ATTENTIONS = (('self_attn', 'self_attn', 'self_attn'),
                      ('cross_attn', 'encoder_attn', 'multihead_attn'))
DECODER_LAYER_PARTS = (
    ('norm1', 'self_attn_layer_norm', 'norm1'),
    ('norm2', 'encoder_attn_layer_norm', 'norm2'),
    ('norm3', 'final_layer_norm', 'norm3'),
    ('ffn.linear1', 'mlp.fc1', 'linear1'),
    ('ffn.linear2', 'mlp.fc2', 'linear2'),
)
MASK_EMBED_LAYERS = 3

HF_BACKBONE = 'model.pixel_level_module.encoder'
HF_PIXEL_DECODER = 'model.pixel_level_module.decoder'
HF_TRANSFORMER = 'model.transformer_module'
OFFICIAL_BACKBONE = 'backbone'
OFFICIAL_PIXEL_DECODER = 'sem_seg_head.pixel_decoder'
OFFICIAL_PREDICTOR = 'sem_seg_head.predictor'
OURS_BACKBONE = 'backbone'
OURS_HEAD = 'decode_head'


def head_sources(num_levels: int, num_layers: int, input_proj: bool
                 ) -> Iterator[Tuple[str, Source, Source]]:
    """(our key, HF source, official source) for every tensor of a :class:`MaskFormerHead` with a
    ``BasePixelDecoder`` (the official encoder pixel decoder, absent from HF, adds its own keys).

    Args:
        num_levels: backbone levels read by the pixel decoder (4).
        num_layers: transformer decoder layers.
        input_proj: whether the predictor has its 1x1 input projection.
    """
    ours = f'{OURS_HEAD}.pixel_decoder'
    hf = f'{HF_PIXEL_DECODER}.fpn'
    official = OFFICIAL_PIXEL_DECODER
    # Official convs are detectron2 Conv2d with the norm inside (``layer_4.norm``), HF's are
    # Sequential(conv, norm), ours are ConvModule(conv, gn). Official modules are numbered from the
    # finest level (``layer_1`` = stride 4, ``layer_4`` = the coarsest); HF's FPN layers run coarse
    # to fine, and our lateral / output convs are indexed fine to coarse.
    yield from _conv_norm3(f'{ours}.last_feat_conv', f'{hf}.stem', f'{official}.layer_{num_levels}')
    for level in range(num_levels - 1):
        hf_index = num_levels - 2 - level
        yield from _conv_norm3(f'{ours}.lateral_convs.{level}', f'{hf}.layers.{hf_index}.proj',
                               f'{official}.adapter_{level + 1}')
        yield from _conv_norm3(f'{ours}.output_convs.{level}', f'{hf}.layers.{hf_index}.block',
                               f'{official}.layer_{level + 1}')
    yield from _params3(f'{ours}.mask_feature', f'{HF_PIXEL_DECODER}.mask_projection',
                        f'{official}.mask_features', LINEAR)

    ours = OURS_HEAD
    hf = HF_TRANSFORMER
    official = OFFICIAL_PREDICTOR
    if input_proj:
        yield from _params3(f'{ours}.input_proj', f'{hf}.input_projection',
                            f'{official}.input_proj', LINEAR)
    yield (f'{ours}.query_embed.weight', f'{hf}.queries_embedder.weight',
           f'{official}.query_embed.weight')
    for layer in range(num_layers):
        ours_layer = f'{ours}.transformer_decoder.layers.{layer}'
        hf_layer = f'{hf}.decoder.layers.{layer}'
        official_layer = f'{official}.transformer.decoder.layers.{layer}'
        for ours_attn, hf_attn, official_attn in DECODER_ATTENTIONS:
            for param in LINEAR:
                yield (f'{ours_layer}.{ours_attn}.in_proj_{param}',
                       tuple(f'{hf_layer}.{hf_attn}.{p}_proj.{param}' for p in 'qkv'),
                       f'{official_layer}.{official_attn}.in_proj_{param}')
            yield from _params3(f'{ours_layer}.{ours_attn}.out_proj',
                                f'{hf_layer}.{hf_attn}.o_proj',
                                f'{official_layer}.{official_attn}.out_proj', LINEAR)
        for ours_part, hf_part, official_part in DECODER_LAYER_PARTS:
            yield from _params3(f'{ours_layer}.{ours_part}', f'{hf_layer}.{hf_part}',
                                f'{official_layer}.{official_part}', LINEAR)
    yield from _params3(f'{ours}.transformer_decoder.norm', f'{hf}.decoder.layernorm',
                        f'{official}.transformer.decoder.norm', LINEAR)
    yield from _params3(f'{ours}.cls_embed', 'class_predictor', f'{official}.class_embed', LINEAR)
    for layer in range(MASK_EMBED_LAYERS):
        yield from _params3(f'{ours}.mask_embed.layers.{layer}', f'mask_embedder.{layer}.0',
                            f'{official}.mask_embed.layers.{layer}', LINEAR)


# Mask2Former: the three levels (1/32, 1/16, 1/8, coarsest first) its pixel-decoder encoder and
# masked-attention decoder read, and the four linear maps of a multi-scale deformable attention
# (the same names in the official MSDeformAttn, HF and mmcv).
MASK2FORMER_LEVELS = 3
MSDEFORM_ATTN_PARTS = ('sampling_offsets', 'attention_weights', 'value_proj', 'output_proj')
# Deformable encoder layer modules besides attention: (ours, HF, official).
MSDEFORM_ENCODER_LAYER_PARTS = (
    ('norm1', 'self_attn_layer_norm', 'norm1'),
    ('ffn.0', 'fc1', 'linear1'),
    ('ffn.3', 'fc2', 'linear2'),
    ('norm2', 'final_layer_norm', 'norm2'),
)
# Masked-attention decoder layer norms and FFN: (ours, HF, official module of layer i, part). The
# official decoder keeps three lists of sub-layers with one LayerNorm each (post-norm): the
# cross-attention's norm runs first, then the self-attention's, then the FFN's.
MASKED_DECODER_LAYER_PARTS = (
    ('norm1', 'cross_attn_layer_norm', 'transformer_cross_attention_layers', 'norm'),
    ('norm2', 'self_attn_layer_norm', 'transformer_self_attention_layers', 'norm'),
    ('ffn.0', 'fc1', 'transformer_ffn_layers', 'linear1'),
    ('ffn.3', 'fc2', 'transformer_ffn_layers', 'linear2'),
    ('norm3', 'final_layer_norm', 'transformer_ffn_layers', 'norm'),
)


def mask2former_head_sources(num_encoder_layers: int, num_decoder_layers: int,
                             input_proj_levels: Iterable[int] = ()
                             ) -> Iterator[Tuple[str, Source, Source]]:
    """(our key, HF source, official source) for every tensor of a :class:`Mask2FormerHead`
    (``MSDeformAttnPixelDecoder`` + masked-attention decoder).

    Official names are those of facebookresearch/Mask2Former's ``MSDeformAttnPixelDecoder``
    (``sem_seg_head.pixel_decoder``) and ``MultiScaleMaskedTransformerDecoder``
    (``sem_seg_head.predictor``); HF's those of ``Mask2FormerForUniversalSegmentation``.

    Args:
        num_encoder_layers: deformable encoder layers of the pixel decoder.
        num_decoder_layers: masked-attention decoder layers (the official ``DEC_LAYERS - 1``).
        input_proj_levels: levels whose 1x1 decoder input projection exists (all three when the
            pixel-decoder width differs from the decoder's or the projection is enforced).
    """
    ours = f'{OURS_HEAD}.pixel_decoder'
    hf, official = HF_PIXEL_DECODER, OFFICIAL_PIXEL_DECODER
    yield f'{ours}.level_embed', f'{hf}.level_embed', f'{official}.transformer.level_embed'
    for level in range(MASK2FORMER_LEVELS):  # nn.Sequential(Conv2d, GroupNorm) in HF and official
        for index, part in enumerate(('conv', 'gn')):
            yield from _params3(f'{ours}.input_projs.{level}.{part}',
                                f'{hf}.input_projections.{level}.{index}',
                                f'{official}.input_proj.{level}.{index}', LINEAR)
    for layer in range(num_encoder_layers):
        ours_layer = f'{ours}.encoder.{layer}'
        hf_layer = f'{hf}.encoder.layers.{layer}'
        official_layer = f'{official}.transformer.encoder.layers.{layer}'
        for part in MSDEFORM_ATTN_PARTS:
            yield from _params3(f'{ours_layer}.self_attn.{part}', f'{hf_layer}.self_attn.{part}',
                                f'{official_layer}.self_attn.{part}', LINEAR)
        for ours_part, hf_part, official_part in MSDEFORM_ENCODER_LAYER_PARTS:
            yield from _params3(f'{ours_layer}.{ours_part}', f'{hf_layer}.{hf_part}',
                                f'{official_layer}.{official_part}', LINEAR)
    # The one FPN level (1/4): official detectron2 Conv2d(norm=GN) without bias, HF
    # Sequential(conv, norm); the 1x1 mask projection has a bias.
    yield from _conv_norm3(f'{ours}.lateral_conv', f'{hf}.adapter_1', f'{official}.adapter_1')
    yield from _conv_norm3(f'{ours}.output_conv', f'{hf}.layer_1', f'{official}.layer_1')
    yield from _params3(f'{ours}.mask_feature', f'{hf}.mask_projection',
                        f'{official}.mask_features', LINEAR)

    ours = f'{OURS_HEAD}.transformer_decoder'
    hf, official = HF_TRANSFORMER, OFFICIAL_PREDICTOR
    yield f'{ours}.query_embed.weight', f'{hf}.queries_embedder.weight', \
        f'{official}.query_embed.weight'
    yield f'{ours}.query_feat.weight', f'{hf}.queries_features.weight', \
        f'{official}.query_feat.weight'
    yield f'{ours}.level_embed.weight', f'{hf}.level_embed.weight', \
        f'{official}.level_embed.weight'
    for level in input_proj_levels:
        yield from _params3(f'{ours}.input_projs.{level}', f'{hf}.input_projections.{level}',
                            f'{official}.input_proj.{level}', LINEAR)
    for layer in range(num_decoder_layers):
        ours_layer = f'{ours}.layers.{layer}'
        hf_layer = f'{hf}.decoder.layers.{layer}'
        cross = f'{official}.transformer_cross_attention_layers.{layer}.multihead_attn'
        self_attn = f'{official}.transformer_self_attention_layers.{layer}.self_attn'
        # Both official attentions are nn.MultiheadAttention (packed q/k/v); HF keeps that for
        # the cross-attention and splits the self-attention into q/k/v projections.
        for param in LINEAR:
            yield (f'{ours_layer}.cross_attn.in_proj_{param}',
                   f'{hf_layer}.cross_attn.in_proj_{param}', f'{cross}.in_proj_{param}')
            yield (f'{ours_layer}.self_attn.in_proj_{param}',
                   tuple(f'{hf_layer}.self_attn.{p}_proj.{param}' for p in 'qkv'),
                   f'{self_attn}.in_proj_{param}')
        yield from _params3(f'{ours_layer}.cross_attn.out_proj', f'{hf_layer}.cross_attn.out_proj',
                            f'{cross}.out_proj', LINEAR)
        yield from _params3(f'{ours_layer}.self_attn.out_proj', f'{hf_layer}.self_attn.out_proj',
                            f'{self_attn}.out_proj', LINEAR)
        for ours_part, hf_part, official_list, official_part in MASKED_DECODER_LAYER_PARTS:
            yield from _params3(f'{ours_layer}.{ours_part}', f'{hf_layer}.{hf_part}',
                                f'{official}.{official_list}.{layer}.{official_part}', LINEAR)
    yield from _params3(f'{ours}.decoder_norm', f'{hf}.decoder.layernorm',
                        f'{official}.decoder_norm', LINEAR)
    for layer in range(MASK_EMBED_LAYERS):
        yield from _params3(f'{ours}.mask_embed.layers.{layer}',
                            f'{hf}.decoder.mask_predictor.mask_embedder.{layer}.0',
                            f'{official}.mask_embed.layers.{layer}', LINEAR)
    yield from _params3(f'{ours}.cls_embed', 'class_predictor', f'{official}.class_embed', LINEAR)


def resnet_sources(depths: Sequence[int], shortcuts: Set[Tuple[int, int]], deep_stem: bool = False
                   ) -> Iterator[Tuple[str, Optional[Source], Source]]:
    """(our key, HF source, official source) for a bottleneck ResNet: mmseg ``ResNet`` (or
    ``ResNetV1c`` with ``deep_stem``), HF ``ResNetBackbone``, detectron2 ``ResNet``.

    Args:
        depths: blocks per stage.
        shortcuts: (stage, block) of the blocks with a projection shortcut; every library adds it
            under the same condition (stride or width change), so the source's keys decide.
        deep_stem: detectron2's DeepLab stem (three 3x3 convs, ``stem.conv1..3``), mmseg's
            ``deep_stem`` (``stem.0/1``, ``stem.3/4``, ``stem.6/7``); HF has no such stem.
    """
    ours, hf, official = OURS_BACKBONE, HF_BACKBONE, OFFICIAL_BACKBONE
    if deep_stem:
        for conv in range(3):
            yield from _conv_bn3(f'{ours}.stem.{3 * conv}', f'{ours}.stem.{3 * conv + 1}', None,
                                 f'{official}.stem.conv{conv + 1}')
    else:
        yield from _conv_bn3(f'{ours}.conv1', f'{ours}.bn1', f'{hf}.embedder.embedder',
                             f'{official}.stem.conv1')
    for stage, num_blocks in enumerate(depths):
        for block in range(num_blocks):
            ours_block = f'{ours}.layer{stage + 1}.{block}'
            hf_block = f'{hf}.encoder.stages.{stage}.layers.{block}'
            official_block = f'{official}.res{stage + 2}.{block}'
            for conv in range(3):
                yield from _conv_bn3(f'{ours_block}.conv{conv + 1}', f'{ours_block}.bn{conv + 1}',
                                     f'{hf_block}.layer.{conv}', f'{official_block}.conv{conv + 1}')
            if (stage, block) in shortcuts:
                yield from _conv_bn3(f'{ours_block}.downsample.0', f'{ours_block}.downsample.1',
                                     f'{hf_block}.shortcut', f'{official_block}.shortcut')


def _conv_bn3(ours_conv: str, ours_bn: str, hf: Optional[str], official: str
              ) -> Iterator[Tuple[str, Optional[Source], Source]]:
    # HF: module(convolution, normalization); detectron2: Conv2d with ``.norm`` inside, a
    # FrozenBatchNorm2d without ``num_batches_tracked``.
    hf_conv, hf_norm = (None, None) if hf is None else (f'{hf}.convolution', f'{hf}.normalization')
    yield f'{ours_conv}.weight', hf_conv and f'{hf_conv}.weight', f'{official}.weight'
    for name in BATCH_NORM_STATS:
        yield f'{ours_bn}.{name}', hf_norm and f'{hf_norm}.{name}', f'{official}.norm.{name}'
    yield (f'{ours_bn}.num_batches_tracked', hf_norm and f'{hf_norm}.num_batches_tracked',
           zero_batches_tracked())


def swin_sources(depths: Sequence[int]) -> Iterator[Tuple[str, Source, Source]]:
    """(our key, HF source, official source) for mmseg ``SwinTransformer``, HF
    ``MaskFormerSwinBackbone`` and the official ``D2SwinTransformer`` (all four stages out).

    mmseg keeps the packed ``qkv`` projection of the official model (HF splits it) and needs the
    patch-merging weights reordered (:func:`unfold_order_reduction`).
    """
    ours, official = OURS_BACKBONE, OFFICIAL_BACKBONE
    hf = f'{HF_BACKBONE}.model'
    yield from _params3(f'{ours}.patch_embed.projection', f'{hf}.embeddings.patch_embeddings.'
                        'projection', f'{official}.patch_embed.proj', LINEAR)
    yield from _params3(f'{ours}.patch_embed.norm', f'{hf}.embeddings.norm',
                        f'{official}.patch_embed.norm', LINEAR)
    for stage, num_blocks in enumerate(depths):
        ours_stage = f'{ours}.stages.{stage}'
        hf_stage = f'{hf}.encoder.layers.{stage}'
        official_stage = f'{official}.layers.{stage}'
        for block in range(num_blocks):
            ours_block = f'{ours_stage}.blocks.{block}'
            hf_block = f'{hf_stage}.blocks.{block}'
            official_block = f'{official_stage}.blocks.{block}'
            attn = f'{ours_block}.attn.w_msa'
            for param in LINEAR:
                yield (f'{attn}.qkv.{param}',
                       tuple(f'{hf_block}.attention.self.{p}.{param}'
                             for p in ('query', 'key', 'value')),
                       f'{official_block}.attn.qkv.{param}')
            for name in ('relative_position_bias_table', 'relative_position_index'):
                yield (f'{attn}.{name}', f'{hf_block}.attention.self.{name}',
                       f'{official_block}.attn.{name}')
            for ours_part, hf_part, official_part in SWIN_BLOCK_PARTS:
                yield from _params3(f'{attn}.proj' if ours_part == 'proj' else
                                    f'{ours_block}.{ours_part}', f'{hf_block}.{hf_part}',
                                    f'{official_block}.{official_part}', LINEAR)
        if stage < len(depths) - 1:
            merging = ('downsample.reduction.weight', unfold_order_reduction), \
                ('downsample.norm.weight', unfold_order_norm), \
                ('downsample.norm.bias', unfold_order_norm)
            for name, reorder in merging:
                yield (f'{ours_stage}.{name}', Derived((f'{hf_stage}.{name}', ), reorder),
                       Derived((f'{official_stage}.{name}', ), reorder))
        yield from _params3(f'{ours}.norm{stage}', f'{HF_BACKBONE}.hidden_states_norms.{stage}',
                            f'{official}.norm{stage}', LINEAR)


# Swin block modules besides attention: (ours, HF, official); 'proj' is inside ``attn.w_msa``.
SWIN_BLOCK_PARTS = (
    ('norm1', 'layernorm_before', 'norm1'),
    ('proj', 'attention.output.dense', 'attn.proj'),
    ('norm2', 'layernorm_after', 'norm2'),
    ('ffn.layers.0.0', 'intermediate.dense', 'mlp.fc1'),
    ('ffn.layers.1', 'output.dense', 'mlp.fc2'),
)


def unfold_order_reduction(weight: torch.Tensor) -> torch.Tensor:
    """Official patch merging concatenates the 2x2 neighbours as (0,0), (1,0), (0,1), (1,1) and
    channels-last; mmseg's ``nn.Unfold`` gives channels-first, neighbours (0,0), (0,1), (1,0),
    (1,1). Same permutation as mmseg's ``tools/model_converters/swin2mmseg.py``."""
    out_channels, in_channels = weight.shape
    weight = weight.reshape(out_channels, 4, in_channels // 4)[:, [0, 2, 1, 3]]
    return weight.transpose(1, 2).reshape(out_channels, in_channels)


def unfold_order_norm(param: torch.Tensor) -> torch.Tensor:
    """:func:`unfold_order_reduction` for the LayerNorm before the reduction."""
    return param.reshape(4, -1)[[0, 2, 1, 3]].transpose(0, 1).reshape(-1)


def _conv_norm3(ours: str, hf: str, official: str) -> Iterator[Tuple[str, str, str]]:
    yield f'{ours}.conv.weight', f'{hf}.0.weight', f'{official}.weight'
    yield from _params3(f'{ours}.gn', f'{hf}.1', f'{official}.norm', LINEAR)


def _params3(ours: str, hf: str, official: str, names: Sequence[str]
             ) -> Iterator[Tuple[str, str, str]]:
    for name in names:
        yield f'{ours}.{name}', f'{hf}.{name}', f'{official}.{name}'


def zero_batches_tracked() -> Derived:
    """``num_batches_tracked`` for checkpoints without it (detectron2's FrozenBatchNorm2d): it
    only matters to BN layers with ``momentum=None``, which mmseg's configs do not use."""
    return Derived((), lambda: torch.tensor(0, dtype=torch.long))


def source_keys(source: Source) -> Tuple[str, ...]:
    if isinstance(source, Derived):
        return source.keys
    return source if isinstance(source, tuple) else (source, )


def apply_key_map(state: Dict[str, torch.Tensor], key_map: KeyMap, source_name: str,
                  ignored: Iterable[str] = ()) -> Dict[str, torch.Tensor]:
    """Build our state dict from ``state``; every source tensor must be used (save ``ignored``
    ones), so that no weight is silently dropped.

    Raises:
        ValueError: naming the keys the map needs but ``state`` lacks, or the keys of ``state``
            nothing uses.
    """
    used = {k for source in key_map.values() for k in source_keys(source)}
    missing = sorted(used - state.keys())
    if missing:
        raise ValueError(f'{source_name} lacks {len(missing)} keys the converted model needs: '
                         f'{_listing(missing)}')
    unused = sorted(state.keys() - used - set(ignored))
    if unused:
        raise ValueError(f'{len(unused)} keys of the {source_name} have no counterpart in the '
                         f'converted model: {_listing(unused)}')
    return {ours: _build(state, source) for ours, source in key_map.items()}


def _build(state: Dict[str, torch.Tensor], source: Source) -> torch.Tensor:
    if isinstance(source, Derived):
        return source.function(*(state[k] for k in source.keys))
    if isinstance(source, tuple):
        return torch.cat([state[k] for k in source])
    return state[source].clone()


def _listing(keys: Sequence[str], limit: int = 10) -> str:
    shown = ', '.join(keys[:limit])
    return shown + (f', ... ({len(keys) - limit} more)' if len(keys) > limit else '')


def check_state_dict_fits(state_dict: Dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    """Raise ``ValueError`` naming every key ``model`` lacks or expects, and every shape that
    differs, before ``load_state_dict(strict=True)`` would stop at the first problem."""
    expected = model.state_dict()
    problems = []
    missing = sorted(expected.keys() - state_dict.keys())
    if missing:
        problems.append(f'missing {len(missing)} keys: {_listing(missing)}')
    unexpected = sorted(state_dict.keys() - expected.keys())
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected keys: {_listing(unexpected)}')
    shapes = [f'{k}: checkpoint {tuple(state_dict[k].shape)}, model {tuple(expected[k].shape)}'
              for k in sorted(expected.keys() & state_dict.keys())
              if state_dict[k].shape != expected[k].shape]
    if shapes:
        problems.append(f'{len(shapes)} shape mismatches: {_listing(shapes)}')
    if problems:
        raise ValueError('the converted checkpoint does not fit the model built from the config; '
                         + '; '.join(problems))
