"""Official Mask2Former checkpoints (facebookresearch/Mask2Former, detectron2) -> MMSegmentation.

The released files are detectron2 ``.pkl`` pickles of ``{'model': {name: ndarray}, ...}``, as for
MaskFormer (:mod:`.official`, whose loading, backbone detection and pixel-decoder key rule this
module shares); models trained with the official code are ``.pth`` files of
``{'model': {name: tensor}, ...}``. The backbone (detectron2 ResNet or ``D2SwinTransformer``, the
same as MaskFormer's) and the numbers of blocks and layers are read from the key names; every
tensor of the file must find its place in our ``MaskFormerSegmentor`` with a
:class:`~mmseg_maskformer.models.Mask2FormerHead`
(:func:`~.key_mapping.mask2former_head_sources`).
"""
from typing import Dict, Iterator, Mapping, Tuple

import torch

from .checkpoint_files import load_checkpoint_file
from .key_mapping import (MASK2FORMER_LEVELS, OFFICIAL_PIXEL_DECODER, OFFICIAL_PREDICTOR, Source,
                          apply_key_map, mask2former_head_sources)
from .official import (IGNORED_KEYS, Checkpoint, backbone_pairs, index_counts,
                       official_state_dict)

# A key prefix only each official head has: the official MaskFormer predictor is DETR's
# transformer (``transformer.decoder.layers``), Mask2Former's
# MultiScaleMaskedTransformerDecoder keeps separate lists of cross-attention, self-attention and
# FFN sub-layers.
MARKERS = {
    'Mask2Former': f'{OFFICIAL_PREDICTOR}.transformer_cross_attention_layers.',
    'MaskFormer': f'{OFFICIAL_PREDICTOR}.transformer.decoder.layers.',
}


def official_model_type(checkpoint: Checkpoint) -> str:
    """``'MaskFormer'`` or ``'Mask2Former'``: which official model a checkpoint (path, or its
    loaded ``{'model': {...}}`` / ``{name: ...}`` dict) holds, told from its key names.

    Raises:
        ValueError: it is neither; the message names the keys each model has.
    """
    if not isinstance(checkpoint, Mapping):
        checkpoint = load_checkpoint_file(str(checkpoint))
    state = checkpoint.get('model', checkpoint)
    keys = list(state) if isinstance(state, Mapping) else []
    for model_type, marker in MARKERS.items():
        if any(key.startswith(marker) for key in keys):
            return model_type
    expected = ' or '.join(f'{marker}* ({model_type})' for model_type, marker in MARKERS.items())
    raise ValueError('neither an official MaskFormer nor an official Mask2Former checkpoint: '
                     f'expected keys {expected}; the checkpoint has '
                     f'{len(keys)} keys starting with {sorted({k.split(".")[0] for k in keys})}')


def convert_official_mask2former(checkpoint: Checkpoint) -> Dict[str, torch.Tensor]:
    """Convert an official Mask2Former checkpoint into a state dict of our ``MaskFormerSegmentor``.

    Args:
        checkpoint: path of a ``.pkl`` / ``.pth`` file (read without running code from it, see
            :func:`~mmseg_maskformer.converters.load_checkpoint_file`), or its loaded dict: either
            ``{'model': {name: array or tensor}, ...}`` or the ``{name: ...}`` dict itself.
            Pixel-decoder keys may be ``sem_seg_head.pixel_decoder.*`` (what the official code
            writes) or lack the ``pixel_decoder.`` part (the official head's rule for old files).

    Returns:
        A state dict for the model built from the matching config (mmseg ``ResNet`` /
        ``ResNetV1c`` / ``SwinTransformer`` backbone, ``mmseg_maskformer.Mask2FormerHead``, e.g.
        ``configs/mask2former/mask2former_r50_8xb2-160k_ade20k-512x512.py``); load it with
        ``strict=True``, or check it first with :func:`check_state_dict_fits`.

    Raises:
        ValueError: the file is not a Mask2Former checkpoint, lacks a tensor its structure
            implies, or holds tensors with no place in our model; the message names the keys.
    """
    state = official_state_dict(checkpoint, 'Mask2Former')
    if not any(key.startswith(MARKERS['Mask2Former']) for key in state):
        official_model_type(state)  # names the model it is, if it is another one
        raise ValueError(f'no {MARKERS["Mask2Former"]}* keys: not an official Mask2Former '
                         'checkpoint (for official MaskFormer checkpoints use '
                         'convert_official_maskformer)')
    key_map = dict(key_pairs(state.keys()))
    return apply_key_map(state, key_map, 'official Mask2Former checkpoint', IGNORED_KEYS)


def key_pairs(keys) -> Iterator[Tuple[str, Source]]:
    """(our key, official source) for every tensor of the converted model."""
    keys = set(keys)
    yield from backbone_pairs(keys)
    num_encoder_layers = len(index_counts(
        keys, rf'{OFFICIAL_PIXEL_DECODER}\.transformer\.encoder\.layers\.(\d+)\.'))
    num_decoder_layers = len(index_counts(
        keys, rf'{OFFICIAL_PREDICTOR}\.transformer_cross_attention_layers\.(\d+)\.'))
    # The official decoder projects its inputs (detectron2 Conv2d, weight and bias) when the
    # pixel-decoder width differs from hidden_dim or ENFORCE_INPUT_PROJ is set; else
    # nn.Sequential() without tensors.
    levels = [level for level in range(MASK2FORMER_LEVELS)
              if f'{OFFICIAL_PREDICTOR}.input_proj.{level}.weight' in keys]
    for ours, _, official in mask2former_head_sources(num_encoder_layers, num_decoder_layers,
                                                      levels):
        yield ours, official


__all__ = ['convert_official_mask2former', 'official_model_type']
