"""What the MaskFormer and Mask2Former decode heads share: matching and losses on the segments of
the samples, semantic scores, the fused whole-image labels and panoptic results."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.utils import ConfigType, SampleList

from .. import ops
from ..core import SetCriterion, pack_masks, panoptic_segmentation, semantic_to_segments
from ..registry import SCOPE, TASK_UTILS

# SetCriterion arguments of releases before the mmdet-style loss dicts.
RETIRED_CRITERION_KEYS = ('class_weight', 'mask_weight', 'dice_weight', 'no_object_weight',
                          'focal_alpha', 'focal_gamma', 'dice_eps')


class MaskClassificationHead(BaseModule):
    """Base of the mask-classification decode heads: a subclass builds its network and defines
    :meth:`all_layer_logits` and :meth:`last_layer_logits`; this class builds the matcher and the
    criterion and implements mmseg's ``loss`` / ``predict`` and the post-processing the
    ``MaskFormerSegmentor`` calls. See :class:`MaskFormerHead` for the arguments."""

    def __init__(self,
                 num_classes: int,
                 loss_cls: ConfigType,
                 loss_mask: Optional[ConfigType],
                 loss_dice: Optional[ConfigType],
                 matcher: ConfigType,
                 criterion: Optional[ConfigType] = None,
                 loss_impl: Optional[str] = None,
                 num_points: Optional[int] = None,
                 deep_supervision: bool = True,
                 ignore_index: int = 255,
                 ignore_mode: str = 'negative',
                 align_corners: bool = False,
                 test_cfg: ConfigType = dict(mode='semantic'),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.out_channels = num_classes
        self.ignore_index = ignore_index
        self.align_corners = align_corners
        self.deep_supervision = deep_supervision
        self.test_cfg = dict(test_cfg or {})
        if self.test_cfg.get('mode', 'semantic') not in ('semantic', 'panoptic'):
            raise ValueError(f"test_cfg.mode must be 'semantic' or 'panoptic', got "
                             f"{self.test_cfg['mode']!r}")
        criterion = dict(criterion or {})
        retired = sorted(set(criterion) & set(RETIRED_CRITERION_KEYS))
        if retired:
            raise ValueError(f'decode_head.criterion no longer takes {retired}: the loss terms are '
                             'the head\'s loss_cls / loss_mask / loss_dice dicts (mmdet style, e.g. '
                             "loss_mask=dict(type='FocalLoss', loss_weight=20.0)); see "
                             "'Loss terms and match costs' in docs/en/get_started.md")
        matcher_cfg = {'_scope_': SCOPE, **matcher}
        matcher_cfg.setdefault('loss_impl', loss_impl)
        matcher_cfg.setdefault('num_points', num_points)
        self.matcher = TASK_UTILS.build(matcher_cfg)
        self.criterion = SetCriterion(num_classes, self.matcher, loss_cls, loss_mask, loss_dice,
                                      loss_impl=loss_impl, num_points=num_points,
                                      ignore_mode=ignore_mode, **criterion)

    def all_layer_logits(self, inputs: Sequence[torch.Tensor], deep_supervision: bool = True
                         ) -> Tuple[List[torch.Tensor], List[torch.Tensor]]:
        """Backbone features -> per prediction set (B, Q, K+1) class and (B, Q, H/4, W/4) mask
        logits, last set last; only the last with ``deep_supervision=False``."""
        raise NotImplementedError

    def last_layer_logits(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """The last prediction set, all that inference uses."""
        all_cls_logits, all_mask_logits = self.all_layer_logits(inputs, deep_supervision=False)
        return all_cls_logits[-1], all_mask_logits[-1]

    def loss(self, inputs: Sequence[torch.Tensor], batch_data_samples: SampleList,
             train_cfg: ConfigType = None) -> Dict[str, torch.Tensor]:
        """Matching + losses against the samples' ``gt_sem_seg`` (padded with ``ignore_index``)."""
        all_cls_logits, all_mask_logits = self.all_layer_logits(inputs, self.deep_supervision)
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
