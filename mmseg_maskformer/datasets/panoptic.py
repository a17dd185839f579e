"""COCO-panoptic-format data for MMSegmentation: a dataset, a loading and a packing transform.

Ground truth for training is one mask per thing instance and one per stuff class, as in the
official MaskFormer panoptic mapper: the loader turns the panoptic PNG into a small segment-index
map (``gt_panoptic_seg``: 0 = void, k = k-th non-crowd segment) that mmseg's geometric transforms
resize, crop and flip like any segmentation map, and a semantic map (``gt_seg_map``) for mIoU.
Crowd segments are left out of the training masks but keep their class in the semantic map; the
PQ metric reads the original PNG, crowd regions included.
"""
import json
import os.path as osp
from typing import Dict, List

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.fileio import get
from mmengine.structures import PixelData
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.transforms import PackSegInputs
from mmseg.registry import DATASETS, TRANSFORMS

from .shapes import rgb2id
from .validation import check_loaded_annotation_size, check_panoptic_segments

# Segment indices live in a uint8 map; 255 is what mmseg pads segmentation maps with.
MAX_SEGMENTS = 254
PACKED_META_KEYS = ('img_path', 'seg_map_path', 'ori_shape', 'img_shape', 'pad_shape',
                    'scale_factor', 'flip', 'flip_direction', 'reduce_zero_label',
                    'segments_info', 'panoptic_labels', 'thing_labels')


def load_panoptic_png(path: str, backend_args=None) -> np.ndarray:
    """(H, W) int64 segment ids of a COCO panoptic PNG."""
    return rgb2id(mmcv.imfrombytes(get(path, backend_args=backend_args), flag='color',
                                   channel_order='rgb'))


@DATASETS.register_module()
class CocoPanopticSegDataset(BaseSegDataset):
    """COCO panoptic format (``ann_file`` JSON + folder of PNGs) as an mmseg dataset.

    Classes, palette and ``thing_classes`` come from the JSON's ``categories`` (their order gives
    the contiguous label ids 0..K-1) unless the config's ``metainfo`` sets them.

    Args:
        ann_file: the panoptic JSON (``images``, ``annotations`` with ``segments_info``,
            ``categories`` with ``isthing``).
        data_prefix: ``img_path`` (images) and ``seg_map_path`` (panoptic PNGs).
        img_suffix: suffix replacing the extension of the JSON image names (COCO: '.jpg').
    """

    def __init__(self, ann_file: str, img_suffix: str = '.jpg', seg_map_suffix: str = '.png',
                 metainfo: dict = None, data_root: str = None, **kwargs):
        path = ann_file if data_root is None or osp.isabs(ann_file) else osp.join(data_root, ann_file)
        with open(path) as f:
            self._categories = json.load(f)['categories']
        defaults = dict(
            classes=tuple(c['name'] for c in self._categories),
            palette=[list(c.get('color', (0, 0, 0))) for c in self._categories],
            thing_classes=tuple(c['name'] for c in self._categories if c.get('isthing', 0)))
        super().__init__(ann_file=ann_file, img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         metainfo=dict(defaults, **(metainfo or {})), data_root=data_root,
                         reduce_zero_label=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        with open(self.ann_file) as f:
            content = json.load(f)
        label_of = {c['id']: i for i, c in enumerate(self._categories)}
        isthing = {c['id']: bool(c.get('isthing', 0)) for c in self._categories}
        images = {image['id']: image for image in content['images']}
        thing_labels = [label_of[c['id']] for c in self._categories if isthing[c['id']]]
        data_list = []
        for annotation in content['annotations']:
            image = images[annotation['image_id']]
            stem = osp.splitext(image['file_name'])[0]
            segments = [
                dict(segment, label=label_of[segment['category_id']],
                     isthing=isthing[segment['category_id']])
                for segment in annotation['segments_info']
            ]
            data_list.append(dict(
                img_path=osp.join(self.data_prefix.get('img_path', ''), stem + self.img_suffix),
                seg_map_path=osp.join(self.data_prefix.get('seg_map_path', ''),
                                      annotation['file_name']),
                segments_info=segments,
                thing_labels=thing_labels,
                label_map=None,
                reduce_zero_label=False,
                seg_fields=[]))
        return data_list


@TRANSFORMS.register_module()
class LoadPanopticAnnotations(BaseTransform):
    """Panoptic PNG -> ``gt_seg_map`` (labels, 255 = void) and ``gt_panoptic_seg`` (segment
    indices), plus ``panoptic_labels``: the label of segment index k at position k-1.

    ``thing_labels`` (from the dataset) travels with every sample so that panoptic inference
    knows which classes have instances without repeating the list in the model config.

    Raises :class:`~mmseg_maskformer.datasets.validation.DataError` naming the PNG if its size
    differs from the image's (load the image first) or its segment ids and the JSON's
    ``segments_info`` disagree."""

    def __init__(self, ignore_index: int = 255, backend_args=None):
        self.ignore_index = ignore_index
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        if results.get('seg_map_path') is None:
            # a bare image: mmseg's inference_model and MMSegInferencer remove only steps named
            # LoadAnnotations from the test pipeline
            return results
        ids = load_panoptic_png(results['seg_map_path'], self.backend_args)
        check_loaded_annotation_size(results, ids.shape)
        check_panoptic_segments(ids, [segment['id'] for segment in results['segments_info']],
                                results['seg_map_path'])
        semantic = np.full(ids.shape, self.ignore_index, dtype=np.uint8)
        index_map = np.zeros(ids.shape, dtype=np.uint8)
        labels = []
        for segment in results['segments_info']:
            mask = ids == segment['id']
            semantic[mask] = segment['label']
            if segment.get('iscrowd', 0):
                continue
            if len(labels) == MAX_SEGMENTS:
                raise ValueError(f'{results["seg_map_path"]} has more than {MAX_SEGMENTS} segments')
            labels.append(segment['label'])
            index_map[mask] = len(labels)
        results['gt_seg_map'] = semantic
        results['gt_panoptic_seg'] = index_map
        results['panoptic_labels'] = labels
        results.setdefault('seg_fields', []).extend(['gt_seg_map', 'gt_panoptic_seg'])
        return results


@TRANSFORMS.register_module()
class PackPanopticSegInputs(PackSegInputs):
    """:class:`PackSegInputs` that also packs ``gt_panoptic_seg`` and the segment metadata."""

    def __init__(self, meta_keys=PACKED_META_KEYS):
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> Dict:
        packed = super().transform(results)
        if 'gt_panoptic_seg' in results:
            packed['data_samples'].gt_panoptic_seg = PixelData(
                data=torch.from_numpy(results['gt_panoptic_seg'].astype(np.int64))[None])
        return packed
