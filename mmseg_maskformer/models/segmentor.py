"""An ``EncoderDecoder`` that can also return MaskFormer's panoptic output."""
from typing import List, Optional

from mmengine.structures import PixelData
from mmseg.models.segmentors import EncoderDecoder
from mmseg.utils import OptSampleList, SampleList

from ..core import semantic_inference
from ..registry import MODELS


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
    """mmseg's ``EncoderDecoder``; with a decode head whose ``test_cfg.mode`` is ``'panoptic'``,
    ``predict`` adds ``pred_panoptic_seg`` (segment ids, 0 = void, at the original image size)
    and the metainfo ``pred_segments_info`` (``id``, ``category_id`` = class index, ``isthing``,
    ``area``) to every sample, next to the usual semantic ``pred_sem_seg`` from one forward pass.

    Which classes are things: the head's ``test_cfg.thing_classes``, else the samples'
    ``thing_labels`` (the panoptic datasets' loader sets them), else the ``thing_classes`` of the
    model's ``dataset_meta`` (what ``mmseg.apis.init_model`` reads from the checkpoint, for bare
    images in ``inference_model`` and ``MMSegInferencer``).
    """

    def predict(self, inputs, data_samples: OptSampleList = None) -> SampleList:
        head = self.decode_head
        if head.test_cfg.get('mode', 'semantic') != 'panoptic':
            return super().predict(inputs, data_samples)
        if self.test_cfg.get('mode', 'whole') != 'whole':
            raise NotImplementedError("panoptic inference needs test_cfg=dict(mode='whole'): "
                                      'segments of sliding windows cannot be averaged')
        if data_samples is None:
            raise ValueError('panoptic inference needs data samples with image metainfo')
        things = thing_labels_of_meta(getattr(self, 'dataset_meta', None))
        for sample in data_samples:
            if 'thing_labels' not in sample and things is not None:
                sample.set_metainfo(dict(thing_labels=things))
        batch_img_metas = [sample.metainfo for sample in data_samples]
        cls_logits, mask_logits = head.last_layer_logits(self.extract_feat(inputs))
        mask_logits = head.upsample_to_input(mask_logits, batch_img_metas)
        data_samples = self.postprocess_result(semantic_inference(cls_logits, mask_logits),
                                               data_samples)
        for sample, (panoptic_seg, segments) in zip(
                data_samples, head.panoptic_results(cls_logits, mask_logits, batch_img_metas)):
            sample.pred_panoptic_seg = PixelData(data=panoptic_seg[None])
            sample.set_metainfo(dict(pred_segments_info=segments))
        return data_samples
