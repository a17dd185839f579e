"""Pixel decoders of the official MaskFormer (``BasePixelDecoder`` and its encoder variant)."""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from ..registry import MODELS
from .transformer import DetrTransformerEncoder, SinePositionalEncoding


def c2_xavier_fill(conv: nn.Conv2d) -> None:
    """Detectron2's initialisation of the official pixel decoder convolutions."""
    nn.init.kaiming_uniform_(conv.weight, a=1)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)


@MODELS.register_module()
class BasePixelDecoder(BaseModule):
    """FPN-style pixel decoder: per-pixel embeddings at the finest input stride.

    The coarsest level gets a 3×3 conv-norm-act; every finer level adds a 1×1 conv-norm lateral to
    the nearest-upsampled coarser output and applies a 3×3 conv-norm-act; a final 3×3 conv (with
    bias, no norm) gives the mask features. Convs followed by a norm have no bias.

    Args:
        in_channels: channels of the input levels, finest first.
        feat_channels: width of the FPN (official 256).
        out_channels: channels of the mask features, C_E (official 256).

    ``forward(feats)`` returns ``(mask_features, memory)``: (B, out_channels, H/4, W/4) and the
    feature the transformer decoder attends to (here the coarsest input level), which has
    ``memory_channels`` channels.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 norm_cfg: dict = dict(type='GN', num_groups=32),
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.in_channels = list(in_channels)
        self.num_levels = len(in_channels)
        self.memory_channels = self.in_channels[-1]
        self.lateral_convs = nn.ModuleList(
            ConvModule(c, feat_channels, 1, norm_cfg=norm_cfg, act_cfg=None)
            for c in self.in_channels[:-1])
        self.output_convs = nn.ModuleList(
            ConvModule(feat_channels, feat_channels, 3, padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)
            for _ in self.in_channels[:-1])
        self.last_feat_conv = self._build_last_feat_conv(feat_channels, norm_cfg, act_cfg)
        self.mask_feature = nn.Conv2d(feat_channels, out_channels, 3, padding=1)

    def _build_last_feat_conv(self, feat_channels: int, norm_cfg: dict, act_cfg: dict) -> nn.Module:
        return ConvModule(self.in_channels[-1], feat_channels, 3, padding=1, norm_cfg=norm_cfg,
                          act_cfg=act_cfg)

    def init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                c2_xavier_fill(module)

    def _fpn(self, feats: List[torch.Tensor], top: torch.Tensor) -> torch.Tensor:
        y = top
        for level in range(self.num_levels - 2, -1, -1):
            lateral = self.lateral_convs[level](feats[level])
            y = lateral + F.interpolate(y, size=lateral.shape[-2:], mode='nearest')
            y = self.output_convs[level](y)
        return self.mask_feature(y)

    def _top_level(self, coarsest: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(FPN output of the coarsest level, transformer memory)."""
        return self.last_feat_conv(coarsest), coarsest

    def forward(self, feats: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        if len(feats) != self.num_levels:
            raise ValueError(f'pixel decoder built for {self.num_levels} levels got {len(feats)}')
        top, memory = self._top_level(feats[-1])
        return self._fpn(feats, top), memory


@MODELS.register_module()
class TransformerEncoderPixelDecoder(BasePixelDecoder):
    """:class:`BasePixelDecoder` whose coarsest level first runs through a DETR encoder.

    The coarsest feature is projected by a 1×1 conv to ``feat_channels``, encoded with sine
    positions by ``num_encoder_layers`` post-norm layers, and the encoder output is both the
    input of the top 3×3 conv and the memory of the transformer decoder (official
    ``TransformerEncoderPixelDecoder``, used for COCO panoptic).
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 norm_cfg: dict = dict(type='GN', num_groups=32),
                 act_cfg: dict = dict(type='ReLU'),
                 num_encoder_layers: int = 6,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.1,
                 init_cfg=None):
        super().__init__(in_channels, feat_channels, out_channels, norm_cfg, act_cfg, init_cfg)
        self.memory_channels = feat_channels
        self.input_proj = nn.Conv2d(self.in_channels[-1], feat_channels, 1)
        self.positional_encoding = SinePositionalEncoding(num_feats=feat_channels // 2, normalize=True)
        self.encoder = DetrTransformerEncoder(num_encoder_layers, feat_channels, num_heads,
                                              feedforward_channels, dropout)

    def _build_last_feat_conv(self, feat_channels: int, norm_cfg: dict, act_cfg: dict) -> nn.Module:
        return ConvModule(feat_channels, feat_channels, 3, padding=1, norm_cfg=norm_cfg,
                          act_cfg=act_cfg)

    def init_weights(self) -> None:
        super().init_weights()
        self.encoder.init_weights()

    def _top_level(self, coarsest: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.input_proj(coarsest)
        batch, channels, height, width = x.shape
        pos = self.positional_encoding(x).flatten(2).transpose(1, 2)
        memory = self.encoder(x.flatten(2).transpose(1, 2), pos)
        memory = memory.transpose(1, 2).reshape(batch, channels, height, width)
        return self.last_feat_conv(memory), memory
