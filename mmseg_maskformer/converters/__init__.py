"""Converters of third-party MaskFormer checkpoints into this project's mmseg models."""
from .checkpoint_files import load_checkpoint_file
from .hf import convert_hf_maskformer
from .key_mapping import check_state_dict_fits
from .official import convert_official_maskformer

__all__ = [
    'check_state_dict_fits', 'convert_hf_maskformer', 'convert_official_maskformer',
    'load_checkpoint_file'
]
