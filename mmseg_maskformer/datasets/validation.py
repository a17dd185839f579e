"""Checks of ground truth that fail loudly and name the file.

Used by the loading transforms (sizes, panoptic PNG vs JSON, at load time: mmcv's ``Resize``
rescales a label map from its own size, so a training pipeline that resizes would hide a size
mismatch), by :class:`mmseg_maskformer.engine.DataCheckHook` (label values of every batch in
training and evaluation: mmseg's ``IoUMetric`` would drop out-of-range labels silently, the
criterion would fail without a file name) and by ``tools/check_dataset.py``. numpy only.
"""
from typing import Iterable, Optional, Sequence

import numpy as np


class DataError(ValueError):
    """A data file is unusable; the message names the file and the problem."""


def invalid_labels(labels, num_classes: int, ignore_index: Optional[int]) -> np.ndarray:
    """The sorted distinct values of ``labels`` outside [0, num_classes) other than
    ``ignore_index``."""
    labels = np.asarray(labels)
    bad = (labels < 0) | (labels >= num_classes)
    if ignore_index is not None:
        bad &= labels != ignore_index
    return np.unique(labels[bad])


def check_labels(labels, num_classes: int, ignore_index: Optional[int], source: str) -> None:
    """Raise :class:`DataError` naming ``source`` if a label is outside [0, num_classes) and is
    not ``ignore_index``."""
    bad = invalid_labels(labels, num_classes, ignore_index)
    if bad.size:
        shown = ', '.join(str(v) for v in bad[:10].tolist()) + (', ...' if bad.size > 10 else '')
        allowed = f'[0, {num_classes})' + ('' if ignore_index is None else
                                           f' or the ignore value {ignore_index}')
        raise DataError(f'{source}: label {shown} out of range (labels must be in {allowed})')


def check_same_size(image_shape: Sequence[int], annotation_shape: Sequence[int], img_path: str,
                    seg_map_path: str) -> None:
    """Raise :class:`DataError` if an image and its annotation differ in height or width."""
    if tuple(image_shape[:2]) != tuple(annotation_shape[:2]):
        raise DataError(
            f'{seg_map_path}: annotation size {tuple(annotation_shape[:2])} (H, W) differs from '
            f'the size {tuple(image_shape[:2])} of its image {img_path}')


def check_loaded_annotation_size(results: dict, annotation_shape: Sequence[int]) -> None:
    """For a loading transform: raise :class:`DataError` naming both files if the annotation just
    read for ``results`` differs in size from its image as read (``ori_shape``, which mmcv's
    ``LoadImageFromFile`` sets). ``img_shape`` is not the reference: mmseg's test pipelines resize
    the image before loading the annotation, which "does not need to do resize data transform"
    (mmseg configs/_base_/datasets/ade20k.py, ``test_pipeline``). Nothing to compare before an
    image is loaded."""
    if 'ori_shape' in results:
        check_same_size(results['ori_shape'], annotation_shape, results.get('img_path'),
                        results['seg_map_path'])


def check_panoptic_segments(segment_ids: np.ndarray, json_ids: Iterable[int],
                            seg_map_path: str) -> None:
    """Raise :class:`DataError` if the panoptic PNG (segment ids, 0 = void) has ids missing from
    its JSON ``segments_info``, or the JSON lists segments absent from the PNG."""
    in_png = set(np.unique(segment_ids).tolist()) - {0}
    in_json = set(int(i) for i in json_ids)
    if in_png - in_json:
        raise DataError(f'{seg_map_path}: segment ids {sorted(in_png - in_json)[:10]} are in the '
                        f'PNG but not in its segments_info in the panoptic JSON')
    if in_json - in_png:
        raise DataError(f'{seg_map_path}: segments {sorted(in_json - in_png)[:10]} of the '
                        f'panoptic JSON have no pixel in the PNG')
