"""Data transforms that mmseg lacks: an annotation loader that checks sizes, and the crop of the
official MaskFormer COCO-panoptic recipe."""
from typing import Tuple

import numpy as np
from mmseg.datasets.transforms import LoadAnnotations, RandomCrop
from mmseg.registry import TRANSFORMS

from .validation import check_loaded_annotation_size


@TRANSFORMS.register_module()
class LoadSizeCheckedAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` (same arguments, same output) that raises
    :class:`~mmseg_maskformer.datasets.validation.DataError` naming the annotation and its image
    when their heights or widths differ.

    mmcv's ``Resize`` rescales a label map from its own size, so in a training pipeline that
    resizes, an annotation of the wrong size would be stretched onto its image and trained on
    unnoticed. Put it after ``LoadImageFromFile``: the annotation is compared with the image as
    read (``ori_shape``), which also holds in test pipelines that load annotations after resizing.

    Without an annotation (``seg_map_path``) it passes the results through: mmseg's
    ``inference_model`` and ``MMSegInferencer`` remove only steps named ``LoadAnnotations`` from
    the test pipeline before running it on bare images.
    """

    def transform(self, results: dict) -> dict:
        if results.get('seg_map_path') is None:
            return results
        results = super().transform(results)
        check_loaded_annotation_size(results, results['gt_seg_map'].shape)
        return results


@TRANSFORMS.register_module()
class RandomRangeCrop(RandomCrop):
    """Crop a random box whose height and width are drawn independently from
    ``[min(size_range[0], side), min(size_range[1], side)]``: detectron2's
    ``RandomCrop('absolute_range', size_range)``, which the official COCO-panoptic recipe applies
    (facebookresearch/MaskFormer mask_former/data/dataset_mappers/detr_panoptic_dataset_mapper.py,
    ``INPUT.CROP.SIZE: (384, 600)``). Crops every map in ``seg_fields`` like mmseg's
    ``RandomCrop``.
    """

    def __init__(self, size_range: Tuple[int, int], **kwargs) -> None:
        low, high = size_range
        if not 0 < low <= high:
            raise ValueError('size_range must be (low, high) with 0 < low <= high, got '
                             f'{size_range}')
        super().__init__(crop_size=(high, high), **kwargs)
        self.size_range = (low, high)

    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        low, high = self.size_range
        self.crop_size = (np.random.randint(min(height, low), min(height, high) + 1),
                          np.random.randint(min(width, low), min(width, high) + 1))
        return super().transform(results)
