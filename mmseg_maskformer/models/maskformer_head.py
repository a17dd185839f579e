"""The MaskFormer decode head for MMSegmentation's ``EncoderDecoder``."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.utils import ConfigType, SampleList

from ..core.loss_terms import MASKFORMER_LOSSES, MASKFORMER_MATCH_COSTS
from ..registry import MODELS, SCOPE
from .base_head import MaskClassificationHead
from .pixel_decoder import c2_xavier_fill
from .transformer import DetrTransformerDecoder, SinePositionalEncoding


class MLP(nn.Module):
    """Linear layers with ReLU between them (the mask-embedding head)."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, num_layers: int):
        super().__init__()
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.layers = nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


@MODELS.register_module()
class MaskFormerHead(MaskClassificationHead):
    """MaskFormer (Cheng et al., NeurIPS 2021) as an mmseg decode head.

    Config name: ``type='mmseg_maskformer.MaskFormerHead'`` (mmseg's own ``MaskFormerHead``, a
    wrapper over mmdet's, keeps its name).

    Args:
        in_channels: channels of the backbone levels used (finest first).
        num_classes: K, the number of semantic classes (the ∅ class is added internally).
        in_index: which backbone outputs feed the pixel decoder.
        num_queries: N, the number of (class, mask) pairs.
        pixel_decoder: config of a pixel decoder in this scope (``BasePixelDecoder`` or
            ``TransformerEncoderPixelDecoder``); ``in_channels`` and ``out_channels`` are filled in.
        mask_channels: C_E, channels of the per-pixel and per-mask embeddings.
        transformer_decoder: ``num_layers``, ``embed_dims``, ``num_heads``,
            ``feedforward_channels``, ``dropout`` of the DETR decoder.
        enforce_input_project: always apply the 1×1 projection before the decoder, even when the
            memory already has ``embed_dims`` channels.
        loss_cls: the class loss, mmdet style: ``dict(type='CrossEntropyLoss', loss_weight=1.0,
            no_object_weight=0.1)`` (or mmdet's ``class_weight`` list of K+1).
        loss_mask: the mask loss: ``dict(type='FocalLoss', loss_weight=20.0, alpha=0.25,
            gamma=2.0)`` (official MaskFormer) or ``dict(type='CrossEntropyLoss',
            use_sigmoid=True, loss_weight=5.0)`` (Mask2Former's BCE); None drops it.
        loss_dice: ``dict(type='DiceLoss', loss_weight=1.0, eps=1.0)``; None drops it. The three
            are parsed by :func:`~mmseg_maskformer.core.parse_losses` and computed by the fused
            ops; an ``mmdet.`` prefix is accepted, so mmseg's loss blocks paste unchanged.
        matcher: config of the matcher in ``TASK_UTILS``: ``dict(type='HungarianMatcher',
            match_costs=[...])`` with mmdet's cost dicts (``ClassificationCost`` 1,
            ``FocalLossCost`` 20, ``DiceCost`` 1 by default).
        criterion: other keyword arguments of :class:`~mmseg_maskformer.core.SetCriterion`
            (``oversample_ratio``, ``importance_sample_ratio`` of the point sampling).
        loss_impl: ``'reference'``, ``'fused'`` or ``None`` (fused when the extension is built);
            used by both matcher and criterion.
        num_points: ``None`` for exact full-resolution mask losses; K for point-sampled losses and
            matching on shared random points (Mask2Former style); used by both.
        deep_supervision: also apply the losses to the intermediate decoder outputs.
        ignore_index: label of ignored / padded ground-truth pixels.
        ignore_mode: ``'negative'`` (official): ignored pixels are negatives in every mask;
            ``'exclude'``: they count in no mask loss and no matching cost (see
            :class:`~mmseg_maskformer.core.SetCriterion`).
        test_cfg: ``dict(mode='semantic')`` (soft semantic sum, the paper §3.4) or
            ``dict(mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8,
            thing_classes=None)``; ``thing_classes=None`` takes the ``thing_labels`` that
            :class:`~mmseg_maskformer.datasets.CocoPanopticSegDataset` puts in every sample.
            Panoptic output needs the ``mmseg_maskformer.MaskFormerSegmentor``. Both modes also
            take ``impl``: ``'fused'`` (the compiled inference ops, which never hold a (Q, H, W)
            tensor; an error without them), ``'reference'`` (PyTorch) or ``None`` (fused where
            the extension has kernels for the device); and ``output_seg_logits`` (default
            False): with the fused ops, whole-image prediction by the ``MaskFormerSegmentor``
            returns ``pred_sem_seg`` without the (K, H, W) ``seg_logits``, unless this is True.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 num_classes: int,
                 in_index: Sequence[int] = (0, 1, 2, 3),
                 num_queries: int = 100,
                 pixel_decoder: ConfigType = dict(type='BasePixelDecoder', feat_channels=256),
                 mask_channels: int = 256,
                 transformer_decoder: ConfigType = dict(
                     num_layers=6, embed_dims=256, num_heads=8, feedforward_channels=2048,
                     dropout=0.1),
                 enforce_input_project: bool = False,
                 loss_cls: ConfigType = MASKFORMER_LOSSES['loss_cls'],
                 loss_mask: Optional[ConfigType] = MASKFORMER_LOSSES['loss_mask'],
                 loss_dice: Optional[ConfigType] = MASKFORMER_LOSSES['loss_dice'],
                 matcher: ConfigType = dict(type='HungarianMatcher',
                                            match_costs=MASKFORMER_MATCH_COSTS),
                 criterion: Optional[ConfigType] = None,
                 loss_impl: Optional[str] = None,
                 num_points: Optional[int] = None,
                 deep_supervision: bool = True,
                 ignore_index: int = 255,
                 ignore_mode: str = 'negative',
                 align_corners: bool = False,
                 test_cfg: ConfigType = dict(mode='semantic'),
                 init_cfg=None):
        super().__init__(num_classes, loss_cls, loss_mask, loss_dice, matcher, criterion,
                         loss_impl, num_points, deep_supervision, ignore_index, ignore_mode,
                         align_corners, test_cfg, init_cfg)
        if len(in_channels) != len(in_index):
            raise ValueError(f'in_channels {tuple(in_channels)} and in_index {tuple(in_index)} '
                             'must have the same length')
        self.in_channels = list(in_channels)
        self.in_index = list(in_index)
        self.num_queries = num_queries

        # _scope_ makes plain names (type='BasePixelDecoder') resolve in this package's registries
        # first, then in mmseg's; scoped names ('mmdet.X') still work.
        self.pixel_decoder = MODELS.build({
            '_scope_': SCOPE, **pixel_decoder, 'in_channels': self.in_channels,
            'out_channels': mask_channels})
        decoder_cfg = dict(transformer_decoder)
        embed_dims = decoder_cfg.get('embed_dims', 256)
        memory_channels = self.pixel_decoder.memory_channels
        if memory_channels != embed_dims or enforce_input_project:
            self.input_proj = nn.Conv2d(memory_channels, embed_dims, 1)
        else:
            self.input_proj = nn.Identity()
        self.positional_encoding = SinePositionalEncoding(num_feats=embed_dims // 2, normalize=True)
        self.transformer_decoder = DetrTransformerDecoder(**decoder_cfg)
        self.query_embed = nn.Embedding(num_queries, embed_dims)
        self.cls_embed = nn.Linear(embed_dims, num_classes + 1)
        self.mask_embed = MLP(embed_dims, embed_dims, mask_channels, num_layers=3)

    def init_weights(self) -> None:
        super().init_weights()
        self.pixel_decoder.init_weights()
        self.transformer_decoder.init_weights()
        if isinstance(self.input_proj, nn.Conv2d):
            c2_xavier_fill(self.input_proj)

    def forward(self, inputs: Sequence[torch.Tensor],
                batch_data_samples: Optional[SampleList] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Backbone features -> class logits (L, B, Q, K+1) and mask logits (L, B, Q, H/4, W/4),
        one entry per decoder layer, last layer last."""
        hidden, mask_features = self.decode(inputs)
        return self.cls_embed(hidden), torch.einsum('lbqc,bchw->lbqhw', self.mask_embed(hidden),
                                                    mask_features)

    def decode(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """Backbone features -> every decoder layer's query embeddings (L, B, Q, C) and the
        per-pixel embeddings (B, C_E, H/4, W/4)."""
        feats = [inputs[i] for i in self.in_index]
        mask_features, memory = self.pixel_decoder(feats)
        memory = self.input_proj(memory)
        pos = self.positional_encoding(memory).flatten(2).transpose(1, 2)
        memory = memory.flatten(2).transpose(1, 2)
        query_pos = self.query_embed.weight[None].expand(memory.shape[0], -1, -1)
        return self.transformer_decoder(query_pos, memory, pos), mask_features

    def layer_logits(self, hidden: torch.Tensor,
                     mask_features: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """One layer's (B, Q, C) query embeddings -> class logits (B, Q, K+1) and mask logits
        (B, Q, H/4, W/4)."""
        return self.cls_embed(hidden), torch.einsum('bqc,bchw->bqhw', self.mask_embed(hidden),
                                                    mask_features)

    def last_layer_logits(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """The last decoder layer's class and mask logits, all that inference uses."""
        hidden, mask_features = self.decode(inputs)
        return self.layer_logits(hidden[-1], mask_features)

    def all_layer_logits(self, inputs: Sequence[torch.Tensor], deep_supervision: bool = True
                         ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Every decoder layer's class and mask logits (the last only without deep supervision)."""
        hidden, mask_features = self.decode(inputs)
        if not deep_supervision:
            hidden = hidden[-1:]
        # Layer by layer: each layer's mask-logit gradient then flows straight into its own
        # product instead of first being stacked into an (L, B, Q, H/4, W/4) gradient.
        all_cls_logits, all_mask_logits = zip(*(self.layer_logits(layer, mask_features)
                                                for layer in hidden))
        return list(all_cls_logits), list(all_mask_logits)
