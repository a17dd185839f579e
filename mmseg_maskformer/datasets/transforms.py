"""Data transforms the official MaskFormer recipes need and mmseg lacks."""
from typing import Tuple

import numpy as np
from mmseg.datasets.transforms import RandomCrop
from mmseg.registry import TRANSFORMS


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
