"""DETR transformer parts as the official MaskFormer uses them (post-norm, sine positions)."""
import math
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F


class SinePositionalEncoding(nn.Module):
    """DETR's 2-D sine encoding: ``2 * num_feats`` channels, y features first."""

    def __init__(self,
                 num_feats: int = 128,
                 temperature: float = 10000,
                 normalize: bool = True,
                 scale: float = 2 * math.pi,
                 eps: float = 1e-6):
        super().__init__()
        self.num_feats = num_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale
        self.eps = eps

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """(B, C, H, W) features (only their shape is used) -> (B, 2*num_feats, H, W)."""
        batch, _, height, width = x.shape
        if padding_mask is None:
            padding_mask = torch.zeros(batch, height, width, dtype=torch.bool, device=x.device)
        not_mask = (~padding_mask).float()
        y_embed = not_mask.cumsum(1)
        x_embed = not_mask.cumsum(2)
        if self.normalize:
            y_embed = y_embed / (y_embed[:, -1:, :] + self.eps) * self.scale
            x_embed = x_embed / (x_embed[:, :, -1:] + self.eps) * self.scale
        dim_t = torch.arange(self.num_feats, dtype=torch.float32, device=x.device)
        dim_t = self.temperature**(2 * torch.div(dim_t, 2, rounding_mode='floor') / self.num_feats)
        pos_x = x_embed[..., None] / dim_t
        pos_y = y_embed[..., None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2).to(x.dtype)


class FeedForward(nn.Module):
    """Linear-ReLU-Dropout-Linear, the FFN of a DETR layer."""

    def __init__(self, embed_dims: int, feedforward_channels: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Linear(embed_dims, feedforward_channels)
        self.linear2 = nn.Linear(feedforward_channels, embed_dims)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(F.relu(self.linear1(x))))


class DetrEncoderLayer(nn.Module):
    """Post-norm self-attention + FFN; positions are added to queries and keys."""

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, feedforward_channels: int = 2048,
                 dropout: float = 0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(embed_dims, feedforward_channels, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        q = k = x + pos
        x = self.norm1(x + self.dropout1(self.self_attn(q, k, value=x, need_weights=False)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class DetrDecoderLayer(nn.Module):
    """Post-norm self-attention, cross-attention and FFN (DETR ``TransformerDecoderLayer``)."""

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, feedforward_channels: int = 2048,
                 dropout: float = 0.1):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)
        self.ffn = FeedForward(embed_dims, feedforward_channels, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.norm3 = nn.LayerNorm(embed_dims)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, query_pos: torch.Tensor, memory: torch.Tensor,
                memory_pos: torch.Tensor) -> torch.Tensor:
        q = k = query + query_pos
        attended = self.self_attn(q, k, value=query, need_weights=False)[0]
        query = self.norm1(query + self.dropout1(attended))
        attended = self.cross_attn(query + query_pos, memory + memory_pos, value=memory,
                                   need_weights=False)[0]
        query = self.norm2(query + self.dropout2(attended))
        return self.norm3(query + self.dropout3(self.ffn(query)))


def _xavier_init_matrices(module: nn.Module) -> None:
    # DETR's Transformer._reset_parameters: Xavier-uniform for every weight matrix.
    for p in module.parameters():
        if p.dim() > 1:
            nn.init.xavier_uniform_(p)


class DetrTransformerEncoder(nn.Module):
    """A stack of post-norm encoder layers (no final norm, as in post-norm DETR)."""

    def __init__(self, num_layers: int = 6, embed_dims: int = 256, num_heads: int = 8,
                 feedforward_channels: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(
            DetrEncoderLayer(embed_dims, num_heads, feedforward_channels, dropout)
            for _ in range(num_layers))

    def init_weights(self) -> None:
        _xavier_init_matrices(self)

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """(B, S, C) sequence and positions -> (B, S, C)."""
        for layer in self.layers:
            x = layer(x, pos)
        return x


class DetrTransformerDecoder(nn.Module):
    """DETR decoder returning every layer's output through the shared final LayerNorm.

    The norm is applied to each intermediate output for deep supervision but not fed into the
    next layer, as in the official implementation.
    """

    def __init__(self, num_layers: int = 6, embed_dims: int = 256, num_heads: int = 8,
                 feedforward_channels: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(
            DetrDecoderLayer(embed_dims, num_heads, feedforward_channels, dropout)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dims)

    def init_weights(self) -> None:
        _xavier_init_matrices(self)

    def forward(self, query_pos: torch.Tensor, memory: torch.Tensor,
                memory_pos: torch.Tensor) -> torch.Tensor:
        """Queries start at zero; ``query_pos`` (B, Q, C), ``memory`` and ``memory_pos`` (B, S, C).

        Returns (L, B, Q, C).
        """
        query = torch.zeros_like(query_pos)
        outputs = []
        for layer in self.layers:
            query = layer(query, query_pos, memory, memory_pos)
            outputs.append(self.norm(query))
        return torch.stack(outputs)
