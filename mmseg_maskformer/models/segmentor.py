"""An ``EncoderDecoder`` that can also return MaskFormer's panoptic output."""
from typing import List, Optional

import torch
from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.structures import SegDataSample
from mmseg.utils import OptSampleList, SampleList

from .. import ops
from ..registry import MODELS
from .base_head import network_input_size


def thing_labels_of_meta(dataset_meta: Optional[dict]) -> Optional[List[int]]:
    """The class indices of the ``thing_classes`` a dataset meta names; None if it names none.

    Raises:
        ValueError: a thing class is not one of its ``classes``.
    """
    if not dataset_meta or 'thing_classes' not in dataset_meta:
        return None
    classes = list(dataset_meta.get('classes', ()))
    missing = [name for name in dataset_meta['thing_classes'] if name not in classes]
    if missing:
        raise ValueError(f'thing classes {missing} are not in the classes {classes}')
    return [classes.index(name) for name in dataset_meta['thing_classes']]


@MODELS.register_module()
class MaskFormerSegmentor(EncoderDecoder):
    """mmseg's ``EncoderDecoder`` with MaskFormer's fused whole-image prediction and its panoptic
    output.

    Semantic prediction (``mode='whole'``): when the head's inference ops are the fused ones
    (``test_cfg.impl`` of the head, :meth:`MaskFormerHead.inference_ops`), ``predict`` folds mmseg's
    ``postprocess_result`` (padding crop, flip undone, bilinear resize to ``ori_shape``, arg-max)
    into :func:`mmseg_maskformer.ops.semantic_labels`, which never holds the (Q, H, W) masks or
    the (K, H, W) scores: samples get ``pred_sem_seg`` but no ``seg_logits``. With the reference
    ops, with ``output_seg_logits=True`` in the head's ``test_cfg`` (set by
    :class:`MaskFormerTTAModel`, which averages them), with one class, or with sliding-window
    inference, it is mmseg's ``predict`` (the head's scores then come from the fused
    :func:`~mmseg_maskformer.ops.semantic_scores`).

    With a decode head whose ``test_cfg.mode`` is ``'panoptic'``, ``predict`` adds
    ``pred_panoptic_seg`` (segment ids, 0 = void, at the original image size) and the metainfo
    ``pred_segments_info`` (``id``, ``category_id`` = class index, ``isthing``, ``area``) to every
    sample, next to the usual semantic ``pred_sem_seg`` from one forward pass.

    Which classes are things: the head's ``test_cfg.thing_classes``, else the samples'
    ``thing_labels`` (the panoptic datasets' loader sets them), else the ``thing_classes`` of the
    model's ``dataset_meta`` (what ``mmseg.apis.init_model`` reads from the checkpoint, for bare
    images in ``inference_model`` and ``MMSegInferencer``).
    """

    def fused_labels(self, device: torch.device) -> bool:
        """Whether whole-image semantic prediction goes through ``ops.semantic_labels``."""
        head = self.decode_head
        return (self.test_cfg.get('mode', 'whole') == 'whole' and head.num_classes > 1 and
                not head.test_cfg.get('output_seg_logits', False) and
                head.inference_ops(device) is ops.fused)

    def predict(self, inputs, data_samples: OptSampleList = None) -> SampleList:
        head = self.decode_head
        panoptic = head.test_cfg.get('mode', 'semantic') == 'panoptic'
        if panoptic and self.test_cfg.get('mode', 'whole') != 'whole':
            raise NotImplementedError("panoptic inference needs test_cfg=dict(mode='whole'): "
                                      'segments of sliding windows cannot be averaged')
        if not panoptic and not self.fused_labels(inputs.device):
            return super().predict(inputs, data_samples)
        if panoptic and data_samples is None:
            raise ValueError('panoptic inference needs data samples with image metainfo')
        if data_samples is None:  # mmseg's metas for bare inputs: no crop, no resize
            size = tuple(inputs.shape[2:])
            data_samples = [SegDataSample(metainfo=dict(ori_shape=size, img_shape=size,
                                                        pad_shape=size))
                            for _ in range(inputs.shape[0])]
        cls_logits, mask_logits = head.last_layer_logits(self.extract_feat(inputs))
        return self.predict_from_logits(cls_logits, mask_logits, data_samples)

    def predict_from_logits(self, cls_logits: torch.Tensor, mask_logits: torch.Tensor,
                            data_samples: SampleList) -> SampleList:
        """Whole-image predictions from the last decoder layer's class logits (B, Q, K+1) and
        (B, Q, H/4, W/4) mask logits: the post-processing of :meth:`predict`."""
        head = self.decode_head
        batch_img_metas = [sample.metainfo for sample in data_samples]
        if self.fused_labels(mask_logits.device):
            for sample, labels in zip(data_samples, head.semantic_label_maps(
                    cls_logits, mask_logits, batch_img_metas, self.align_corners)):
                sample.pred_sem_seg = PixelData(data=labels[None])
        else:
            size = network_input_size(batch_img_metas[0], mask_logits.shape[-2:])
            scores = head.inference_ops(mask_logits.device).semantic_scores(
                cls_logits, mask_logits, size)
            data_samples = self.postprocess_result(scores, data_samples)
        if head.test_cfg.get('mode', 'semantic') == 'panoptic':
            things = thing_labels_of_meta(getattr(self, 'dataset_meta', None))
            for sample in data_samples:
                if 'thing_labels' not in sample and things is not None:
                    sample.set_metainfo(dict(thing_labels=things))
            batch_img_metas = [sample.metainfo for sample in data_samples]
            for sample, (panoptic_seg, segments) in zip(
                    data_samples, head.panoptic_results(cls_logits, mask_logits, batch_img_metas)):
                sample.pred_panoptic_seg = PixelData(data=panoptic_seg[None])
                sample.set_metainfo(dict(pred_segments_info=segments))
        return data_samples
