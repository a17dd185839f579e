"""Official MaskFormer checkpoints (facebookresearch/MaskFormer, detectron2) -> MMSegmentation.

The released files are ``.pkl`` pickles of ``{'model': {name: ndarray}, '__author__': ...}``;
models trained with the official code are ``.pth`` files of ``{'model': {name: tensor}, ...}``.
The structure of the network (ResNet with the basic or DeepLab stem, or Swin; the plain or the
transformer-encoder pixel decoder; with or without the predictor's input projection; the number
of blocks and layers) is read from the key names, and every tensor of the file must find its
place in our model.
"""
import os
import re
from typing import Dict, Iterator, Mapping, Tuple, Union

import numpy as np
import torch

from .checkpoint_files import load_checkpoint_file
from .key_mapping import (LINEAR, OFFICIAL_BACKBONE, OFFICIAL_PIXEL_DECODER, OFFICIAL_PREDICTOR,
                          OURS_HEAD, Source, apply_key_map, head_sources, resnet_sources,
                          swin_sources)

OFFICIAL_HEAD = 'sem_seg_head'
# The criterion's class weights (1 for every class, NO_OBJECT_WEIGHT for the no-object class), a
# persistent buffer of DETR's SetCriterion: a training setting, not a weight of the network.
IGNORED_KEYS = ('criterion.empty_weight', )
ENCODER_LAYER_PARTS = (
    ('norm1', 'norm1'),
    ('norm2', 'norm2'),
    ('ffn.linear1', 'linear1'),
    ('ffn.linear2', 'linear2'),
)

Checkpoint = Union[str, os.PathLike, Mapping]


def convert_official_maskformer(checkpoint: Checkpoint) -> Dict[str, torch.Tensor]:
    """Convert an official MaskFormer checkpoint into a state dict of our ``EncoderDecoder``.

    Args:
        checkpoint: path of a ``.pkl`` / ``.pth`` file (read without running code from it, see
            :func:`~mmseg_maskformer.converters.load_checkpoint_file`), or its loaded dict: either
            ``{'model': {name: array or tensor}, ...}`` or the ``{name: ...}`` dict itself.
            Pixel-decoder keys may be the raw names of the released files
            (``sem_seg_head.layer_4``) or those the official code writes
            (``sem_seg_head.pixel_decoder.layer_4``).

    Returns:
        A state dict for the model built from the matching config (mmseg ``ResNet`` /
        ``ResNetV1c`` / ``SwinTransformer`` backbone and ``mmseg_maskformer.MaskFormerHead``); load
        it with ``strict=True``, or check it first with :func:`check_state_dict_fits`.

    Raises:
        ValueError: the file is not a MaskFormer checkpoint, lacks a tensor its structure implies,
            or holds tensors with no place in our model; the message names the keys.
    """
    state = official_state_dict(checkpoint)
    key_map = dict(key_pairs(state.keys()))
    return apply_key_map(state, key_map, 'official MaskFormer checkpoint', IGNORED_KEYS)


def official_state_dict(checkpoint: Checkpoint, model_name: str = 'MaskFormer'
                        ) -> Dict[str, torch.Tensor]:
    """The checkpoint's tensors (numpy arrays become tensors), pixel-decoder keys under
    ``sem_seg_head.pixel_decoder.``; ``model_name`` names the expected model in errors."""
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint = load_checkpoint_file(os.fspath(checkpoint))
    state = checkpoint.get('model', checkpoint)
    if not isinstance(state, Mapping):
        raise ValueError(f"the checkpoint's 'model' entry is a {type(state).__name__}, not a "
                         'dict of tensors')
    tensors = {}
    for key, value in state.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f'checkpoint entry {key} is a {type(value).__name__}, not an array')
        tensors[_with_pixel_decoder_prefix(key)] = value
    if not any(k.startswith(f'{OFFICIAL_HEAD}.') for k in tensors):
        raise ValueError(f'no {OFFICIAL_HEAD}.* keys: not an official {model_name} checkpoint '
                         f'(keys start with {sorted({k.split(".")[0] for k in tensors})})')
    return tensors


def _with_pixel_decoder_prefix(key: str) -> str:
    # The rule of the official MaskFormerHead._load_from_state_dict for checkpoints older than
    # its version 2: head keys outside the predictor belong to the pixel decoder.
    head = f'{OFFICIAL_HEAD}.'
    if key.startswith(head) and not key.startswith((f'{head}predictor.',
                                                    f'{head}pixel_decoder.')):
        return f'{OFFICIAL_PIXEL_DECODER}.{key[len(head):]}'
    return key


def key_pairs(keys) -> Iterator[Tuple[str, Source]]:
    """(our key, official source) for every tensor of the converted model."""
    keys = set(keys)
    yield from backbone_pairs(keys)
    num_levels = 1 + len(index_counts(keys, rf'{OFFICIAL_PIXEL_DECODER}\.adapter_(\d+)\.',
                                      first=1))
    num_layers = len(index_counts(
        keys, rf'{OFFICIAL_PREDICTOR}\.transformer\.decoder\.layers\.(\d+)\.'))
    input_proj = f'{OFFICIAL_PREDICTOR}.input_proj.weight' in keys
    for ours, _, official in head_sources(num_levels, num_layers, input_proj):
        yield ours, official
    num_encoder_layers = len(index_counts(
        keys, rf'{OFFICIAL_PIXEL_DECODER}\.transformer\.encoder\.layers\.(\d+)\.'))
    if num_encoder_layers:
        yield from _encoder_pixel_decoder_pairs(num_encoder_layers)


def backbone_pairs(keys) -> Iterator[Tuple[str, Source]]:
    """(our key, official source) for the backbone, told from the keys: detectron2 ResNet (basic
    or DeepLab stem) or the official ``D2SwinTransformer``; shared by the MaskFormer and
    Mask2Former releases, which use the same backbones."""
    if f'{OFFICIAL_BACKBONE}.patch_embed.proj.weight' in keys:
        depths = index_counts(keys, rf'{OFFICIAL_BACKBONE}\.layers\.(\d+)\.blocks\.(\d+)\.')
        triples = swin_sources(depths)
    elif f'{OFFICIAL_BACKBONE}.stem.conv1.weight' in keys:
        depths = index_counts(keys, rf'{OFFICIAL_BACKBONE}\.res(\d+)\.(\d+)\.', first=2)
        shortcuts = {(stage, block) for stage, blocks in enumerate(depths)
                     for block in range(blocks)
                     if f'{OFFICIAL_BACKBONE}.res{stage + 2}.{block}.shortcut.weight' in keys}
        deep_stem = f'{OFFICIAL_BACKBONE}.stem.conv2.weight' in keys
        triples = resnet_sources(depths, shortcuts, deep_stem)
    else:
        raise ValueError('cannot tell the backbone: the checkpoint has neither '
                         f'{OFFICIAL_BACKBONE}.stem.conv1.weight (ResNet) nor '
                         f'{OFFICIAL_BACKBONE}.patch_embed.proj.weight (Swin)')
    for ours, _, official in triples:
        yield ours, official


def _encoder_pixel_decoder_pairs(num_layers: int) -> Iterator[Tuple[str, Source]]:
    """The extra tensors of the official ``TransformerEncoderPixelDecoder`` (our
    ``TransformerEncoderPixelDecoder``): its 1x1 input projection and DETR encoder layers."""
    ours = f'{OURS_HEAD}.pixel_decoder'
    official = OFFICIAL_PIXEL_DECODER
    for name in LINEAR:
        yield f'{ours}.input_proj.{name}', f'{official}.input_proj.{name}'
    for layer in range(num_layers):
        ours_layer = f'{ours}.encoder.layers.{layer}'
        official_layer = f'{official}.transformer.encoder.layers.{layer}'
        for name in ('in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias'):
            yield f'{ours_layer}.self_attn.{name}', f'{official_layer}.self_attn.{name}'
        for ours_part, official_part in ENCODER_LAYER_PARTS:
            for name in LINEAR:
                yield f'{ours_layer}.{ours_part}.{name}', f'{official_layer}.{official_part}.{name}'


def index_counts(keys, pattern: str, first: int = 0) -> list:
    """Per value ``i`` of the pattern's first group (consecutive from ``first``), the number of
    distinct values of its second group if it has one (blocks per stage), else 1."""
    found: Dict[int, set] = {}
    for key in keys:
        match = re.match(pattern, key)
        if match:
            found.setdefault(int(match.group(1)), set()).add(match.groups()[1:])
    indices = sorted(found)
    if indices != list(range(first, first + len(indices))):
        raise ValueError(f'keys matching {pattern!r} have indices {indices}, expected consecutive '
                         f'indices from {first}')
    return [len(found[i]) for i in indices]
