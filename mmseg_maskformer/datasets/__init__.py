"""Datasets. Importing this package registers ``ShapesDataset``, ``CocoPanopticSegDataset`` and
its transforms, and ``IgnoreBand``, with MMSegmentation.

The Shapes generator (:mod:`.shapes`) needs only numpy and Pillow, so that the data can be made
where MMSegmentation is not installed; the registration is then skipped and the dataset classes
raise the original ImportError when they are used.
"""
from .shapes import (CATEGORIES, CLASSES, PALETTE, STUFF_CLASSES, THING_CLASSES,
                     generate_shapes_dataset, id2rgb, render_sample, rgb2id)

_MMSEG_NAMES = ('CocoPanopticSegDataset', 'IgnoreBand', 'LoadPanopticAnnotations',
                'PackPanopticSegInputs', 'ShapesDataset')
__all__ = [
    'CATEGORIES', 'CLASSES', 'PALETTE', 'STUFF_CLASSES', 'THING_CLASSES',
    'generate_shapes_dataset', 'id2rgb', 'render_sample', 'rgb2id', *_MMSEG_NAMES
]

try:
    from .ignore_band import IgnoreBand
    from .panoptic import CocoPanopticSegDataset, LoadPanopticAnnotations, PackPanopticSegInputs
    from .shapes_dataset import ShapesDataset
except ModuleNotFoundError as error:
    # Only a missing OpenMMLab stack is tolerated; any other failure is a real bug.
    if (error.name or '').split('.')[0] not in ('mmseg', 'mmcv', 'mmengine'):
        raise
    _MISSING = error

    def __getattr__(name):
        if name in _MMSEG_NAMES:
            raise ImportError(f'{name} needs MMSegmentation: {_MISSING}') from _MISSING
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
