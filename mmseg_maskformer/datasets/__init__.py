"""Datasets. Importing this package registers ``ShapesDataset`` with MMSegmentation.

The Shapes generator (:mod:`.shapes`) needs only numpy and Pillow, so that the data can be made
where MMSegmentation is not installed; the registration is then skipped and ``ShapesDataset``
raises the original ImportError when it is used.
"""
from .shapes import (CATEGORIES, CLASSES, PALETTE, STUFF_CLASSES, THING_CLASSES,
                     generate_shapes_dataset, id2rgb, render_sample, rgb2id)

__all__ = [
    'CATEGORIES', 'CLASSES', 'PALETTE', 'STUFF_CLASSES', 'THING_CLASSES', 'ShapesDataset',
    'generate_shapes_dataset', 'id2rgb', 'render_sample', 'rgb2id'
]

_OPENMMLAB = ('mmseg', 'mmcv', 'mmengine')
try:
    from .shapes_dataset import ShapesDataset
except ModuleNotFoundError as error:
    # Only a missing OpenMMLab stack is tolerated; any other failure is a real bug.
    if (error.name or '').split('.')[0] not in _OPENMMLAB:
        raise
    _MISSING = error

    def __getattr__(name):
        if name == 'ShapesDataset':
            raise ImportError(f'ShapesDataset needs MMSegmentation: {_MISSING}') from _MISSING
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
