"""MMSegmentation dataset class for the Shapes data made by :mod:`.shapes`."""
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .shapes import CLASSES, PALETTE, STUFF_CLASSES, THING_CLASSES


@DATASETS.register_module()
class ShapesDataset(BaseSegDataset):
    """Semantic segmentation view of the Shapes dataset.

    Class ids equal the panoptic category ids. ``thing_classes`` and ``stuff_classes`` in the
    metainfo tell the panoptic code which classes have instances. Use with
    ``data_root='data/shapes'`` and ``data_prefix=dict(img_path='img_dir/train',
    seg_map_path='ann_dir/train')`` (or ``.../val``).
    """
    METAINFO = dict(
        classes=CLASSES, palette=[list(c) for c in PALETTE], thing_classes=THING_CLASSES,
        stuff_classes=STUFF_CLASSES)

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
