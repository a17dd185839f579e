"""Multi-scale + flip testing that merges MaskFormer's semantic scores as the official code does."""
from typing import List

import torch
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from mmseg.utils import SampleList

from ..registry import MODELS


@MODELS.register_module()
class MaskFormerTTAModel(BaseTTAModel):
    """Test-time augmentation for MaskFormer semantic segmentation.

    Config name: ``tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')``, used with a
    ``tta_pipeline`` whose ``TestTimeAug`` lists the resizes and flips (``tools/test.py --tta``
    swaps both in, as in mmseg).

    Each augmented view is predicted by the wrapped segmentor, whose ``seg_logits`` are already
    brought back to the original image (batch padding cropped, flip undone, resized to
    ``ori_shape`` by mmseg's ``postprocess_result``). The views' scores are **averaged** and the
    arg-max is the prediction, as in the official ``SemanticSegmentorWithTTA``
    (facebookresearch/MaskFormer mask_former/test_time_augmentation.py). mmseg's ``SegTTAModel``
    would apply a softmax to each view first: right for per-pixel logits, not for MaskFormer's
    scores, which are already probabilities Σ_q p_q(c)·σ(m_q).

    Panoptic test-time augmentation is not part of the official code and is not supported.
    """

    def __init__(self, module, data_preprocessor=None):
        super().__init__(module, data_preprocessor)
        head = getattr(self.module, 'decode_head', None)
        if head is not None and hasattr(head, 'test_cfg'):
            # The views' scores are averaged: the segmentor must return them (fused scores, then
            # mmseg's postprocess_result) rather than only the fused labels.
            head.test_cfg['output_seg_logits'] = True
        if head is not None and head.test_cfg.get('mode', 'semantic') == 'panoptic':
            raise NotImplementedError(
                'MaskFormerTTAModel merges semantic scores; panoptic test-time augmentation is not '
                "part of the official MaskFormer code: use a semantic config (test_cfg mode "
                "'semantic') or test without --tta")

    def merge_preds(self, data_samples_list: List[SampleList]) -> SampleList:
        """Per image, the mean of its views' ``seg_logits`` and their arg-max.

        Args:
            data_samples_list: one list per image, holding that image's predicted samples, one
                per augmented view.

        Returns:
            One sample per image with ``seg_logits`` (the mean scores, (K, H, W)),
            ``pred_sem_seg`` ((1, H, W)), the ground truth and the metainfo of its first view.
        """
        merged = []
        for views in data_samples_list:
            shapes = {tuple(view.seg_logits.data.shape) for view in views}
            if len(shapes) != 1:
                raise ValueError('test-time augmentation views of one image must have scores of '
                                 f'one shape (the original image size), got {sorted(shapes)}')
            scores = torch.stack([view.seg_logits.data for view in views]).mean(0)
            sample = SegDataSample(metainfo=views[0].metainfo)
            sample.seg_logits = PixelData(data=scores)
            sample.pred_sem_seg = PixelData(data=scores.argmax(0, keepdim=True))
            if 'gt_sem_seg' in views[0]:
                sample.gt_sem_seg = views[0].gt_sem_seg
            merged.append(sample)
        return merged
