"""The MaskFormer decode head for MMSegmentation's ``EncoderDecoder``."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.utils import ConfigType, SampleList

from .. import ops
from ..core import SetCriterion, pack_masks, panoptic_segmentation, semantic_to_segments
from ..registry import MODELS, SCOPE, TASK_UTILS
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
class MaskFormerHead(BaseModule):
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
        matcher: config of the matcher in ``TASK_UTILS`` (costs 1 / 20 / 1 by default).
        criterion: keyword arguments of :class:`~mmseg_maskformer.core.SetCriterion` (loss weights,
            ∅ weight, focal / dice hyper-parameters).
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
                 matcher: ConfigType = dict(
                     type='HungarianMatcher', cost_class=1.0, cost_focal=20.0, cost_dice=1.0),
                 criterion: ConfigType = dict(
                     class_weight=1.0, mask_weight=20.0, dice_weight=1.0, no_object_weight=0.1),
                 loss_impl: Optional[str] = None,
                 num_points: Optional[int] = None,
                 deep_supervision: bool = True,
                 ignore_index: int = 255,
                 ignore_mode: str = 'negative',
                 align_corners: bool = False,
                 test_cfg: ConfigType = dict(mode='semantic'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if len(in_channels) != len(in_index):
            raise ValueError(f'in_channels {tuple(in_channels)} and in_index {tuple(in_index)} '
                             'must have the same length')
        self.in_channels = list(in_channels)
        self.in_index = list(in_index)
        self.num_classes = num_classes
        self.out_channels = num_classes
        self.num_queries = num_queries
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.deep_supervision = deep_supervision
        self.test_cfg = dict(test_cfg or {})
        if self.test_cfg.get('mode', 'semantic') not in ('semantic', 'panoptic'):
            raise ValueError(f"test_cfg.mode must be 'semantic' or 'panoptic', got "
                             f"{self.test_cfg['mode']!r}")

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

        matcher_cfg = {'_scope_': SCOPE, **matcher}
        matcher_cfg.setdefault('loss_impl', loss_impl)
        matcher_cfg.setdefault('num_points', num_points)
        self.matcher = TASK_UTILS.build(matcher_cfg)
        self.criterion = SetCriterion(num_classes, self.matcher, loss_impl=loss_impl,
                                      num_points=num_points, ignore_mode=ignore_mode,
                                      **dict(criterion))

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

    def loss(self, inputs: Sequence[torch.Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType = None) -> Dict[str, torch.Tensor]:
        """Matching + losses against the samples' ``gt_sem_seg`` (padded with ``ignore_index``)."""
        hidden, mask_features = self.decode(inputs)
        if not self.deep_supervision:
            hidden = hidden[-1:]
        # Layer by layer: each layer's mask-logit gradient then flows straight into its own
        # product instead of first being stacked into an (L, B, Q, H/4, W/4) gradient.
        all_cls_logits, all_mask_logits = zip(*(self.layer_logits(layer, mask_features)
                                                for layer in hidden))
        gt_labels, gt_masks = self.segments_from_samples(batch_data_samples)
        gt_valid = None
        if self.criterion.ignore_mode == 'exclude':
            gt_valid = [sample.gt_sem_seg.data[0] != self.ignore_index
                        for sample in batch_data_samples]
        return self.criterion(all_cls_logits, all_mask_logits, gt_labels, gt_masks,
                              gt_valid=gt_valid)

    def segments_from_samples(self, batch_data_samples: SampleList
                              ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Training targets per image: from ``gt_panoptic_seg`` (one mask per thing instance and
        per stuff class) when the sample has it, else one mask per class of ``gt_sem_seg``. The
        masks of all images are views of one buffer (:func:`pack_masks`), which the criterion
        keeps for backward without copying it."""
        segments = [
            panoptic_segments(sample) if 'gt_panoptic_seg' in sample else
            semantic_to_segments(sample.gt_sem_seg.data, self.num_classes, self.ignore_index)
            for sample in batch_data_samples
        ]
        return [labels for labels, _ in segments], pack_masks([masks for _, masks in segments])

    def inference_ops(self, device: torch.device):
        """The inference ops ``test_cfg.impl`` selects for a device
        (:func:`~mmseg_maskformer.ops.inference_backend`)."""
        return ops.inference_backend(self.test_cfg.get('impl'), device)

    def predict(self, inputs: Sequence[torch.Tensor], batch_img_metas: List[dict],
                test_cfg: ConfigType = None) -> torch.Tensor:
        """Semantic scores (B, K, H, W) at the network-input size (the paper's semantic inference),
        what mmseg's whole and sliding-window inference and test-time augmentation use."""
        cls_logits, mask_logits = self.last_layer_logits(inputs)
        size = network_input_size(batch_img_metas[0], mask_logits.shape[-2:])
        return self.inference_ops(mask_logits.device).semantic_scores(cls_logits, mask_logits, size)

    def semantic_label_maps(self, cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                            batch_img_metas: List[dict],
                            align_corners: bool = False) -> List[torch.Tensor]:
        """Per image the (H, W) semantic map at its original size, from the last layer's class
        logits (B, Q, K+1) and (B, Q, H/4, W/4) mask logits: mmseg's ``postprocess_result``
        (padding crop, flip undone, resize to ``ori_shape``) and arg-max folded into
        :func:`ops.semantic_labels`."""
        semantic = self.inference_ops(mask_logits.device)
        return [semantic.semantic_labels(cls, masks, **output_geometry(meta, masks.shape[-2:]),
                                         align_corners=align_corners)
                for cls, masks, meta in zip(cls_logits, mask_logits, batch_img_metas)]

    def panoptic_results(self, cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                         batch_img_metas: List[dict]) -> List[Tuple[torch.Tensor, List[dict]]]:
        """Per image ``(panoptic_seg, segments_info)`` at the original image size, from the last
        layer's class logits (B, Q, K+1) and (B, Q, H/4, W/4) mask logits: the kept queries'
        logits upsampled to the network input, padding cropped, flip undone, resized to
        ``ori_shape`` (:func:`ops.panoptic_assignment`), then the official merging."""
        cfg = self.test_cfg
        panoptic = self.inference_ops(mask_logits.device)
        results = []
        for cls, masks, meta in zip(cls_logits, mask_logits, batch_img_metas):
            geometry = output_geometry(meta, masks.shape[-2:])
            thing_classes = cfg.get('thing_classes')
            if thing_classes is None:
                thing_classes = meta.get('thing_labels', ())

            def assign(kept_masks, scores, geometry=geometry):
                return panoptic.panoptic_assignment(kept_masks, scores, **geometry)

            results.append(panoptic_segmentation(
                cls, masks, assign, geometry['output_size'],
                cfg.get('object_mask_threshold', 0.8), cfg.get('overlap_threshold', 0.8),
                thing_classes))
        return results


def panoptic_segments(sample) -> Tuple[torch.Tensor, torch.Tensor]:
    """(labels, masks) of the non-crowd segments of a sample's ``gt_panoptic_seg``, padded (as
    void) to the batch-padded size of its ``gt_sem_seg``. The criterion checks the label range."""
    index_map = sample.gt_panoptic_seg.data[0]
    height, width = sample.gt_sem_seg.data.shape[-2:]
    index_map = F.pad(index_map, (0, width - index_map.shape[1], 0, height - index_map.shape[0]))
    labels = torch.as_tensor(sample.metainfo['panoptic_labels'], dtype=torch.long,
                             device=index_map.device)
    masks = index_map[None] == torch.arange(1, len(labels) + 1, device=index_map.device)[:, None, None]
    present = masks.flatten(1).any(1)  # crops can remove segments
    return labels[present], masks[present]


def output_geometry(img_meta: dict, mask_size: Sequence[int]) -> dict:
    """``input_size``, ``output_size``, ``crop`` and ``flip`` of one image for the inference ops,
    by the rules of mmseg's ``BaseSegmentor.postprocess_result``: the batch padding
    (``img_padding_size`` or ``padding_size``: left, right, top, bottom) is cropped from the
    network-input grid, a test-time flip is undone, and the result is resized to ``ori_shape``
    (without ``ori_shape``, the cropped grid is the output)."""
    height, width = network_input_size(img_meta, mask_size)
    padding = img_meta.get('img_padding_size', img_meta.get('padding_size', None)) or [0, 0, 0, 0]
    left, right, top, bottom = (int(p) for p in padding)
    crop = (top, left, height - top - bottom, width - left - right)
    flip = img_meta.get('flip_direction') if img_meta.get('flip', False) else None
    if flip not in (None, 'horizontal', 'vertical'):
        raise ValueError(f"flip_direction must be 'horizontal' or 'vertical', got {flip!r}")
    output_size = tuple(int(s) for s in img_meta.get('ori_shape', crop[2:])[:2])
    return dict(input_size=(height, width), output_size=output_size, crop=crop, flip=flip)


def network_input_size(img_meta: dict, mask_size: Sequence[int]) -> Tuple[int, int]:
    """Size of the tensor the backbone saw, whose stride-4 map is ``mask_size``.

    ``pad_shape`` is that size after batch padding, but during sliding-window inference mmseg
    overwrites only ``img_shape`` with the crop size, leaving a stale ``pad_shape``; the stride-4
    size tells which one belongs to this forward pass.
    """
    candidates = [img_meta[key] for key in ('pad_shape', 'img_shape') if key in img_meta]
    for shape in candidates:
        height, width = shape[:2]
        if (-(-height // 4), -(-width // 4)) == tuple(mask_size):
            return int(height), int(width)
    if not candidates:
        raise KeyError('img_meta needs img_shape (or pad_shape) to size the predictions')
    return tuple(int(s) for s in candidates[-1][:2])
