"""Layer 3: MMEngine registrations (scope ``mmseg_maskformer``) that adapt the core to mmseg."""
from .mask2former_head import Mask2FormerHead
from .maskformer_head import MaskFormerHead
from .matcher import HungarianMatcher
from .msdeform_pixel_decoder import MSDeformAttnPixelDecoder
from .pixel_decoder import BasePixelDecoder, TransformerEncoderPixelDecoder
from .segmentor import MaskFormerSegmentor
from .tta import MaskFormerTTAModel
from ..utils.checkpoint import install_safe_checkpoint_loading

# Configs of this project import this package, so their checkpoints load on torch >= 2.6, safely.
install_safe_checkpoint_loading()

__all__ = [
    'BasePixelDecoder', 'HungarianMatcher', 'MSDeformAttnPixelDecoder', 'Mask2FormerHead',
    'MaskFormerHead',
    'MaskFormerSegmentor', 'MaskFormerTTAModel', 'TransformerEncoderPixelDecoder'
]
