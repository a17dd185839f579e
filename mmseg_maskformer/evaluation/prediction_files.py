"""Predictions as files (numpy + Pillow), written by ``tools/test.py --out`` (through
:class:`LabelMapIoUMetric` and :class:`PanopticQualityMetric`) and ``tools/infer.py``.

Label maps: one class index per pixel, 8-bit PNG, or 16-bit when a class index does not fit in 8
bits (ADE20K-Full's 847 classes; mmseg's ``IoUMetric`` would write them modulo 256).

Panoptic: per image ``panoptic/NAME.png`` (segment id = R + 256·G + 256²·B, 0 = void) and, per run,
``panoptic.json`` with the COCO-panoptic ``annotations`` (``segments_info``: ``id``,
``category_id`` = class index, ``isthing``, ``area``, ``bbox``, ``iscrowd``) and ``categories``
(the format of the COCO panopticapi, with class indices as category ids).
"""
import json
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np
from PIL import Image

from ..datasets.shapes import id2rgb


def write_label_map(path: str, labels: np.ndarray, num_labels: int) -> None:
    """Save (H, W) class indices below ``num_labels`` as a PNG: 8-bit up to 256 labels, else
    16-bit."""
    dtype = np.uint8 if num_labels <= 256 else np.uint16
    Image.fromarray(np.asarray(labels).astype(dtype)).save(path)


def bbox_of(mask: np.ndarray) -> List[int]:
    """COCO box [x, y, width, height] of a non-empty (H, W) mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def write_panoptic_png(out_dir: str, name: str, segment_map: np.ndarray,
                       segments_info: Sequence[dict]) -> dict:
    """Write ``out_dir/panoptic/NAME.png`` and return the image's COCO-panoptic annotation
    (segments without pixels left out)."""
    segments = [
        dict(id=int(s['id']), category_id=int(s['category_id']), iscrowd=0,
             isthing=bool(s['isthing']), area=int(s['area']),
             bbox=bbox_of(segment_map == s['id']))
        for s in segments_info if s['area'] > 0
    ]
    os.makedirs(osp.join(out_dir, 'panoptic'), exist_ok=True)
    Image.fromarray(id2rgb(segment_map)).save(osp.join(out_dir, 'panoptic', f'{name}.png'))
    return dict(image_id=name, file_name=f'{name}.png', segments_info=segments)


def write_panoptic_json(out_dir: str, annotations: List[Dict], classes: Sequence[str],
                        thing_labels: Sequence[int]) -> str:
    """Write ``out_dir/panoptic.json`` (``annotations`` and ``categories``); returns its path."""
    things = set(int(label) for label in thing_labels)
    categories = [dict(id=i, name=name, isthing=int(i in things)) for i, name in enumerate(classes)]
    path = osp.join(out_dir, 'panoptic.json')
    with open(path, 'w') as f:
        json.dump(dict(annotations=annotations, categories=categories), f)
    return path
