"""Mask2Former's transformer decoder with masked attention (official
``MultiScaleMaskedTransformerDecoder``, facebookresearch/Mask2Former
``mask2former/modeling/transformer_decoder/mask2former_transformer_decoder.py``)."""
from typing import List, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .maskformer_head import MLP
from .pixel_decoder import c2_xavier_fill
from .transformer import SinePositionalEncoding


class MaskedAttentionDecoderLayer(nn.Module):
    """Post-norm layer in the official order: masked cross-attention to one feature level, then
    self-attention among the queries, then a ReLU FFN. Positions are added to queries and keys,
    not to values."""

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 dropout: float = 0.0):
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout,
                                                batch_first=True)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout,
                                               batch_first=True)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = nn.Sequential(nn.Linear(embed_dims, feedforward_channels), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout), nn.Linear(feedforward_channels, embed_dims))
        self.dropout = nn.Dropout(dropout)
        self.norm3 = nn.LayerNorm(embed_dims)

    def forward(self, query: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor,
                memory_pos: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """(B, Q, C) queries attend to (B, HW, C) memory where ``attn_mask`` (B·heads, Q, HW) is
        False."""
        attended = self.cross_attn(query + query_pos, memory + memory_pos, memory,
                                   attn_mask=attn_mask, need_weights=False)[0]
        query = self.norm1(query + self.dropout(attended))
        q = query + query_pos
        query = self.norm2(query + self.dropout(self.self_attn(q, q, query,
                                                               need_weights=False)[0]))
        return self.norm3(query + self.dropout(self.ffn(query)))


class MaskedAttentionTransformerDecoder(nn.Module):
    """Learnable query features and positions refined by ``num_layers`` masked-attention layers
    that cycle over the pixel decoder's three scales (coarsest first); each layer's queries may only
    attend where the previous prediction, resized to that scale, has σ ≥ 0.5 (a query whose mask is
    empty there attends everywhere). Class and mask predictions come from the queries before the
    first layer and after every layer (``num_layers + 1`` sets, all for deep supervision).

    Args:
        in_channels: channels of the multi-scale features (a 1×1 projection when it differs from
            ``embed_dims``, or with ``enforce_input_project``).
        num_classes: K (the ∅ class is added).
        mask_channels: channels of the per-pixel mask features.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 mask_channels: int = 256,
                 num_queries: int = 100,
                 num_layers: int = 9,
                 embed_dims: int = 256,
                 num_heads: int = 8,
                 feedforward_channels: int = 2048,
                 dropout: float = 0.0,
                 num_levels: int = 3,
                 enforce_input_project: bool = False):
        super().__init__()
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.positional_encoding = SinePositionalEncoding(num_feats=embed_dims // 2, normalize=True)
        self.query_feat = nn.Embedding(num_queries, embed_dims)
        self.query_embed = nn.Embedding(num_queries, embed_dims)
        self.level_embed = nn.Embedding(num_levels, embed_dims)
        self.input_projs = nn.ModuleList(
            nn.Conv2d(in_channels, embed_dims, 1)
            if in_channels != embed_dims or enforce_input_project else nn.Identity()
            for _ in range(num_levels))
        self.layers = nn.ModuleList(
            MaskedAttentionDecoderLayer(embed_dims, num_heads, feedforward_channels, dropout)
            for _ in range(num_layers))
        self.decoder_norm = nn.LayerNorm(embed_dims)
        self.cls_embed = nn.Linear(embed_dims, num_classes + 1)
        self.mask_embed = MLP(embed_dims, embed_dims, mask_channels, num_layers=3)

    def init_weights(self) -> None:
        for proj in self.input_projs:
            if isinstance(proj, nn.Conv2d):
                c2_xavier_fill(proj)
        for layer in self.layers:
            for module in layer.modules():
                if isinstance(module, nn.Linear) and module.weight.dim() > 1:
                    nn.init.xavier_uniform_(module.weight)
            for attention in (layer.cross_attn, layer.self_attn):
                nn.init.xavier_uniform_(attention.in_proj_weight)

    def predict(self, query: torch.Tensor, mask_features: torch.Tensor,
                attn_size: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Class logits (B, Q, K+1), mask logits (B, Q, H/4, W/4) and the attention mask of the
        next layer at ``attn_size`` (B·heads, Q, h·w), True where attention is not allowed."""
        query = self.decoder_norm(query)
        mask_logits = torch.einsum('bqc,bchw->bqhw', self.mask_embed(query), mask_features)
        resized = F.interpolate(mask_logits, size=tuple(attn_size), mode='bilinear',
                                align_corners=False)
        attn_mask = (resized.sigmoid().flatten(2) < 0.5).detach()
        attn_mask = attn_mask[:, None].expand(-1, self.num_heads, -1, -1).flatten(0, 1)
        return self.cls_embed(query), mask_logits, attn_mask

    def forward(self, multi_scale_features: List[torch.Tensor],
                mask_features: torch.Tensor) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Per prediction set (before the first layer, then after each), class logits
        (B, Q, K+1) and mask logits (B, Q, H/4, W/4)."""
        if len(multi_scale_features) != self.num_levels:
            raise ValueError(f'the decoder cycles over {self.num_levels} scales, got '
                             f'{len(multi_scale_features)} feature maps')
        sizes = [tuple(x.shape[-2:]) for x in multi_scale_features]
        memories = [proj(x).flatten(2).transpose(1, 2) + self.level_embed.weight[i]
                    for i, (proj, x) in enumerate(zip(self.input_projs, multi_scale_features))]
        positions = [self.positional_encoding(x).flatten(2).transpose(1, 2)
                     for x in multi_scale_features]
        batch = mask_features.shape[0]
        query = self.query_feat.weight[None].expand(batch, -1, -1)
        query_pos = self.query_embed.weight[None].expand(batch, -1, -1)
        cls_logits, mask_logits, attn_mask = self.predict(query, mask_features, sizes[0])
        all_cls, all_masks = [cls_logits], [mask_logits]
        for i, layer in enumerate(self.layers):
            level = i % self.num_levels
            # A query with no pixel above 0.5 at this scale attends everywhere.
            attn_mask = attn_mask & ~attn_mask.all(-1, keepdim=True)
            query = layer(query, query_pos, memories[level], positions[level], attn_mask)
            cls_logits, mask_logits, attn_mask = self.predict(
                query, mask_features, sizes[(i + 1) % self.num_levels])
            all_cls.append(cls_logits)
            all_masks.append(mask_logits)
        return all_cls, all_masks
