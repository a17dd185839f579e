"""Datasets. Importing this package registers ``ShapesDataset``, ``CocoPanopticSegDataset``,
``ADE20KFullDataset`` and their transforms (``LoadSizeCheckedAnnotations``, which every config
uses in place of mmseg's ``LoadAnnotations``, ...) with MMSegmentation.

The Shapes generator (:mod:`.shapes`) needs only numpy and Pillow and :mod:`.wrappers` plain
Python, so that they work where MMSegmentation is not installed; the registration is then skipped
and the dataset classes raise the original ImportError when they are used.
"""
from .ade20k_full_classes import ADE20K_FULL_CLASSES
from .shapes import (CATEGORIES, CLASSES, PALETTE, STUFF_CLASSES, THING_CLASSES,
                     generate_shapes_dataset, id2rgb, render_sample, rgb2id)
from .wrappers import underlying_dataset_configs

_MMSEG_NAMES = ('ADE20KFullDataset', 'CocoPanopticSegDataset', 'IgnoreBand',
                'Load16BitAnnotations', 'LoadPanopticAnnotations', 'LoadSizeCheckedAnnotations',
                'PackPanopticSegInputs', 'RandomRangeCrop', 'ShapesDataset')
__all__ = [
    'ADE20K_FULL_CLASSES', 'CATEGORIES', 'CLASSES', 'PALETTE', 'STUFF_CLASSES', 'THING_CLASSES',
    'generate_shapes_dataset', 'id2rgb', 'render_sample', 'rgb2id', 'underlying_dataset_configs',
    *_MMSEG_NAMES
]

try:
    from .ade20k_full import ADE20KFullDataset, Load16BitAnnotations
    from .ignore_band import IgnoreBand
    from .panoptic import CocoPanopticSegDataset, LoadPanopticAnnotations, PackPanopticSegInputs
    from .shapes_dataset import ShapesDataset
    from .transforms import LoadSizeCheckedAnnotations, RandomRangeCrop
except ModuleNotFoundError as error:
    # Only a missing OpenMMLab stack is tolerated; any other failure is a real bug.
    if (error.name or '').split('.')[0] not in ('mmseg', 'mmcv', 'mmengine'):
        raise
    _MISSING = error

    def __getattr__(name):
        if name in _MMSEG_NAMES:
            raise ImportError(f'{name} needs MMSegmentation: {_MISSING}') from _MISSING
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
