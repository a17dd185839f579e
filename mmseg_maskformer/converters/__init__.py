"""Converters of third-party MaskFormer checkpoints into this project's mmseg models."""
from .hf import convert_hf_maskformer

__all__ = ['convert_hf_maskformer']
