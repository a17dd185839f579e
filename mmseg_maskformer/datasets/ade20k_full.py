"""ADE20K-Full (847 classes) for MMSegmentation, in the layout the official MaskFormer
preparation script writes (facebookresearch/MaskFormer datasets/prepare_ade20k_full_sem_seg.py):
``.jpg`` images and 16-bit ``.tif`` label maps holding train IDs 0..846, 65535 = ignore."""
import mmcv
import numpy as np
from mmengine import fileio
from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS, TRANSFORMS

from .ade20k_full_classes import ADE20K_FULL_CLASSES
from .transforms import LoadSizeCheckedAnnotations

ADE20K_FULL_IGNORE_INDEX = 65535


@DATASETS.register_module()
class ADE20KFullDataset(BaseSegDataset):
    """ADE20K-Full semantic segmentation: 847 classes, ignore index 65535.

    Use with ``data_root='data/ADE20K_2021_17_01'`` and ``data_prefix=dict(
    img_path='images_detectron2/training', seg_map_path='annotations_detectron2/training')`` (or
    ``validation``), and load the labels with :class:`Load16BitAnnotations`.
    """
    METAINFO = dict(classes=ADE20K_FULL_CLASSES)

    def __init__(self, img_suffix: str = '.jpg', seg_map_suffix: str = '.tif',
                 ignore_index: int = ADE20K_FULL_IGNORE_INDEX, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=False, ignore_index=ignore_index, **kwargs)


@TRANSFORMS.register_module()
class Load16BitAnnotations(LoadSizeCheckedAnnotations):
    """:class:`LoadSizeCheckedAnnotations` for 16-bit label maps (e.g. ADE20K-Full's TIFFs): the
    labels are kept as uint16 where mmseg's loader casts them to uint8 (847 classes and the ignore
    value 65535 do not fit in 8 bits). ``reduce_zero_label`` is not supported (no 16-bit dataset
    here uses it); a ``label_map`` of the dataset is applied as in mmseg.
    """

    def _load_seg_map(self, results: dict) -> None:
        if results.get('reduce_zero_label', False) or self.reduce_zero_label:
            raise ValueError('Load16BitAnnotations does not support reduce_zero_label=True')
        path = results['seg_map_path']
        seg_map = mmcv.imfrombytes(fileio.get(path, backend_args=self.backend_args),
                                   flag='unchanged', backend=self.imdecode_backend).squeeze()
        if seg_map.dtype != np.uint16 or seg_map.ndim != 2:
            raise ValueError(f'{path}: expected a single-channel 16-bit label map, got '
                             f'{seg_map.dtype} of shape {seg_map.shape}')
        if results.get('label_map') is not None:
            original = seg_map.copy()
            for old_id, new_id in results['label_map'].items():
                seg_map[original == old_id] = new_id
        results['gt_seg_map'] = seg_map
        results['seg_fields'].append('gt_seg_map')
