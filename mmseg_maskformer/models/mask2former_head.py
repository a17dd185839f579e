"""The Mask2Former decode head (Cheng et al., CVPR 2022) for MMSegmentation's ``EncoderDecoder``."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmseg.utils import ConfigType

from ..core.loss_terms import MASK2FORMER_LOSSES, MASK2FORMER_MATCH_COSTS
from ..registry import MODELS, SCOPE
from .base_head import MaskClassificationHead
from .mask2former_decoder import MaskedAttentionTransformerDecoder


@MODELS.register_module()
class Mask2FormerHead(MaskClassificationHead):
    """Mask2Former as an mmseg decode head: :class:`MSDeformAttnPixelDecoder` and the
    masked-attention transformer decoder (official ``MaskFormerHead`` +
    ``MultiScaleMaskedTransformerDecoder`` of facebookresearch/Mask2Former), trained with the
    shared matcher and criterion on sampled points.

    Config name: ``type='mmseg_maskformer.Mask2FormerHead'`` (mmseg's own ``Mask2FormerHead``, a
    wrapper over mmdet's, keeps its name).

    The defaults are the official ADE20K semantic recipe: 100 queries, 9 decoder layers of width
    256 with 8 heads and FFN 2048, no dropout; losses CE 2.0 (∅ weight 0.1), sigmoid BCE 5.0 and
    dice 5.0 on 12544 importance-sampled points (``loss_mask=dict(type='CrossEntropyLoss',
    use_sigmoid=True)``: the focal op with ``gamma=0`` and no α weighting), matching with the same
    weights on 12544 uniform points per image (``ClassificationCost``, ``CrossEntropyLossCost``,
    ``DiceCost``); deep supervision on the 9 intermediate predictions and the one before the first
    layer.

    Args:
        in_channels: channels of the four backbone levels (finest first).
        num_classes: K.
        pixel_decoder: config of the pixel decoder (``MSDeformAttnPixelDecoder`` in this scope);
            ``in_channels`` and ``out_channels`` are filled in.
        mask_channels: channels of the mask features and mask embeddings.
        transformer_decoder: keyword arguments of :class:`MaskedAttentionTransformerDecoder`
            (``num_layers``, ``embed_dims``, ``num_heads``, ``feedforward_channels``,
            ``dropout``).
        The other arguments are those of :class:`MaskFormerHead`.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 in_index: Sequence[int] = (0, 1, 2, 3),
                 num_queries: int = 100,
                 pixel_decoder: ConfigType = dict(type='MSDeformAttnPixelDecoder',
                                                  feat_channels=256),
                 mask_channels: int = 256,
                 transformer_decoder: ConfigType = dict(
                     num_layers=9, embed_dims=256, num_heads=8, feedforward_channels=2048,
                     dropout=0.0),
                 enforce_input_project: bool = False,
                 loss_cls: ConfigType = MASK2FORMER_LOSSES['loss_cls'],
                 loss_mask: Optional[ConfigType] = MASK2FORMER_LOSSES['loss_mask'],
                 loss_dice: Optional[ConfigType] = MASK2FORMER_LOSSES['loss_dice'],
                 matcher: ConfigType = dict(type='HungarianMatcher',
                                            match_costs=MASK2FORMER_MATCH_COSTS),
                 criterion: Optional[ConfigType] = None,
                 loss_impl: Optional[str] = None,
                 num_points: Optional[int] = 12544,
                 deep_supervision: bool = True,
                 ignore_index: int = 255,
                 ignore_mode: str = 'negative',
                 align_corners: bool = False,
                 test_cfg: ConfigType = dict(mode='semantic'),
                 init_cfg=None):
        super().__init__(num_classes, loss_cls, loss_mask, loss_dice, matcher, criterion,
                         loss_impl, num_points, deep_supervision, ignore_index, ignore_mode,
                         align_corners, test_cfg, init_cfg)
        if len(in_channels) != 4 or len(in_index) != 4:
            raise ValueError(f'Mask2FormerHead needs four backbone levels, got in_channels '
                             f'{tuple(in_channels)} and in_index {tuple(in_index)}')
        self.in_channels = list(in_channels)
        self.in_index = list(in_index)
        self.num_queries = num_queries
        self.pixel_decoder = MODELS.build({
            '_scope_': SCOPE, **pixel_decoder, 'in_channels': self.in_channels,
            'out_channels': mask_channels})
        feat_channels = self.pixel_decoder.mask_feature.in_channels
        self.transformer_decoder = MaskedAttentionTransformerDecoder(
            feat_channels, num_classes, mask_channels, num_queries=num_queries,
            enforce_input_project=enforce_input_project, **dict(transformer_decoder))

    def init_weights(self) -> None:
        super().init_weights()
        self.pixel_decoder.init_weights()
        self.transformer_decoder.init_weights()

    def forward(self, inputs: Sequence[torch.Tensor], batch_data_samples=None
                ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Backbone features -> per prediction set (before the first decoder layer, then after
        each) class logits (B, Q, K+1) and mask logits (B, Q, H/4, W/4)."""
        mask_features, multi_scale = self.pixel_decoder([inputs[i] for i in self.in_index])
        return self.transformer_decoder(multi_scale, mask_features)

    def all_layer_logits(self, inputs: Sequence[torch.Tensor], deep_supervision: bool = True
                         ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        # Masked attention needs every layer's prediction: all are computed either way.
        all_cls_logits, all_mask_logits = self.forward(inputs)
        if not deep_supervision:
            return all_cls_logits[-1:], all_mask_logits[-1:]
        return all_cls_logits, all_mask_logits
