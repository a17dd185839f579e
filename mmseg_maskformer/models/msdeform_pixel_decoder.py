"""Mask2Former's pixel decoder: a multi-scale deformable-attention encoder over the 1/8, 1/16 and
1/32 features and an FPN lateral to 1/4 (official ``MSDeformAttnPixelDecoder``,
facebookresearch/Mask2Former ``mask2former/modeling/pixel_decoder/msdeformattn.py``)."""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmcv.ops import MultiScaleDeformableAttention
from mmengine.model import BaseModule

from ..registry import MODELS
from .pixel_decoder import c2_xavier_fill
from .transformer import SinePositionalEncoding


class MSDeformAttnEncoderLayer(nn.Module):
    """Post-norm layer: deformable self-attention over all levels, then a ReLU FFN."""

    def __init__(self, embed_dims: int, num_heads: int, num_levels: int, num_points: int,
                 feedforward_channels: int, dropout: float):
        super().__init__()
        # mmcv's attention adds its input (the residual) to its output itself.
        self.self_attn = MultiScaleDeformableAttention(
            embed_dims, num_heads, num_levels, num_points, dropout=dropout, batch_first=True)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(nn.Linear(embed_dims, feedforward_channels), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout), nn.Linear(feedforward_channels, embed_dims),
                                 nn.Dropout(dropout))
        self.norm2 = nn.LayerNorm(embed_dims)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, reference_points: torch.Tensor,
                spatial_shapes: torch.Tensor, level_start_index: torch.Tensor) -> torch.Tensor:
        x = self.norm1(self.self_attn(query=x, query_pos=pos, reference_points=reference_points,
                                      spatial_shapes=spatial_shapes,
                                      level_start_index=level_start_index))
        return self.norm2(x + self.ffn(x))


def encoder_reference_points(spatial_shapes: Sequence[Tuple[int, int]],
                             device: torch.device) -> torch.Tensor:
    """(1, sum h*w, num_levels, 2) pixel centres (x, y) in [0, 1] (no padding: valid ratio 1),
    the same point for every level, as Deformable DETR's encoder."""
    points = []
    for height, width in spatial_shapes:
        y, x = torch.meshgrid(torch.linspace(0.5, height - 0.5, height, device=device) / height,
                              torch.linspace(0.5, width - 0.5, width, device=device) / width,
                              indexing='ij')
        points.append(torch.stack((x.reshape(-1), y.reshape(-1)), -1))
    return torch.cat(points)[None, :, None].expand(-1, -1, len(spatial_shapes), -1)


@MODELS.register_module()
class MSDeformAttnPixelDecoder(BaseModule):
    """Mask2Former's pixel decoder.

    The three coarsest levels (1/8, 1/16, 1/32) are projected by 1×1 conv + GroupNorm to
    ``feat_channels``, given sine positions plus a learned per-level embedding and encoded together
    by ``num_encoder_layers`` deformable-attention layers (``num_heads`` heads, ``num_points``
    sampling points per level). The finest level (1/4) gets a 1×1 conv-norm lateral added to the
    bilinearly upsampled 1/8 encoder output, then a 3×3 conv-norm-ReLU; a 1×1 conv gives the mask
    features.

    Args:
        in_channels: channels of the four input levels, finest first.
        feat_channels: width of the encoder and FPN (official 256).
        out_channels: channels of the mask features (official 256).

    ``forward(feats)`` returns ``(mask_features, multi_scale_features)``: (B, out_channels, H/4,
    W/4) and the encoder outputs at 1/32, 1/16 and 1/8 (coarsest first), which the masked-attention
    decoder cycles over.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 feat_channels: int = 256,
                 out_channels: int = 256,
                 num_encoder_layers: int = 6,
                 num_heads: int = 8,
                 num_points: int = 4,
                 feedforward_channels: int = 1024,
                 dropout: float = 0.0,
                 num_groups: int = 32,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != 4:
            raise ValueError(f'MSDeformAttnPixelDecoder needs 4 input levels (1/4 to 1/32), got '
                             f'in_channels {tuple(in_channels)}')
        self.in_channels = list(in_channels)
        self.num_levels = 3
        norm_cfg = dict(type='GN', num_groups=num_groups)
        # Coarsest first, as the official input_proj.
        self.input_projs = nn.ModuleList(
            ConvModule(c, feat_channels, 1, norm_cfg=norm_cfg, act_cfg=None, bias=True)
            for c in self.in_channels[:0:-1])
        self.positional_encoding = SinePositionalEncoding(num_feats=feat_channels // 2,
                                                          normalize=True)
        self.level_embed = nn.Parameter(torch.zeros(self.num_levels, feat_channels))
        self.encoder = nn.ModuleList(
            MSDeformAttnEncoderLayer(feat_channels, num_heads, self.num_levels, num_points,
                                     feedforward_channels, dropout)
            for _ in range(num_encoder_layers))
        self.lateral_conv = ConvModule(self.in_channels[0], feat_channels, 1, norm_cfg=norm_cfg,
                                       act_cfg=None)
        self.output_conv = ConvModule(feat_channels, feat_channels, 3, padding=1,
                                      norm_cfg=norm_cfg, act_cfg=dict(type='ReLU'))
        self.mask_feature = nn.Conv2d(feat_channels, out_channels, 1)

    def init_weights(self) -> None:
        # The official initialisation: xavier-uniform projections, c2_xavier_fill elsewhere,
        # mmcv's own for the deformable attention, normal level embeddings.
        for proj in self.input_projs:
            nn.init.xavier_uniform_(proj.conv.weight, gain=1)
            nn.init.zeros_(proj.conv.bias)
        for conv in (self.lateral_conv.conv, self.output_conv.conv, self.mask_feature):
            c2_xavier_fill(conv)
        for layer in self.encoder:
            layer.self_attn.init_weights()
            for linear in (layer.ffn[0], layer.ffn[3]):
                nn.init.xavier_uniform_(linear.weight)
                nn.init.zeros_(linear.bias)
        nn.init.normal_(self.level_embed)

    def forward(self, feats: List[torch.Tensor]) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        if len(feats) != 4:
            raise ValueError(f'MSDeformAttnPixelDecoder takes 4 levels, got {len(feats)}')
        levels = feats[:0:-1]  # 1/32, 1/16, 1/8
        srcs = [proj(x) for proj, x in zip(self.input_projs, levels)]
        shapes = [tuple(src.shape[-2:]) for src in srcs]
        x = torch.cat([src.flatten(2).transpose(1, 2) for src in srcs], 1)
        pos = torch.cat([
            self.positional_encoding(src).flatten(2).transpose(1, 2) + self.level_embed[i]
            for i, src in enumerate(srcs)], 1)
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=x.device)
        level_start_index = torch.cat((spatial_shapes.new_zeros(1),
                                       spatial_shapes.prod(1).cumsum(0)[:-1]))
        reference_points = encoder_reference_points(shapes, x.device).expand(x.shape[0], -1, -1,
                                                                             -1)
        for layer in self.encoder:
            x = layer(x, pos, reference_points, spatial_shapes, level_start_index)
        batch, channels = x.shape[0], x.shape[2]
        outs = [part.transpose(1, 2).reshape(batch, channels, *shape)
                for part, shape in zip(x.split([h * w for h, w in shapes], 1), shapes)]
        lateral = self.lateral_conv(feats[0])
        y = self.output_conv(lateral + F.interpolate(outs[-1], size=lateral.shape[-2:],
                                                     mode='bilinear', align_corners=False))
        return self.mask_feature(y), outs
