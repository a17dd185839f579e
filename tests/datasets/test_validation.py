"""Ground-truth checks (hand-made cases) and the panoptic loader's checks at load time."""
import json

import numpy as np
import pytest
from PIL import Image

from mmseg_maskformer.datasets import LoadPanopticAnnotations, generate_shapes_dataset
from mmseg_maskformer.datasets.shapes import id2rgb
from mmseg_maskformer.datasets.validation import (DataError, check_labels,
                                                  check_panoptic_segments, check_same_size,
                                                  invalid_labels)


def test_invalid_labels_are_the_values_outside_the_classes_and_not_ignored():
    labels = np.array([[0, 5, 6, 255], [9, -1, 254, 6]])
    assert invalid_labels(labels, 6, 255).tolist() == [-1, 6, 9, 254]
    assert invalid_labels(labels, 6, None).tolist() == [-1, 6, 9, 254, 255]
    assert invalid_labels(np.array([0, 5, 255]), 6, 255).size == 0


def test_check_labels_names_the_file_and_the_labels():
    check_labels(np.array([[0, 1], [255, 5]]), 6, 255, 'a.png')
    with pytest.raises(DataError, match=r'^ann/a.png: label 6, 9 out of range \(labels must be in '
                       r'\[0, 6\) or the ignore value 255\)$'):
        check_labels(np.array([[0, 9], [6, 255]]), 6, 255, 'ann/a.png')


def test_check_same_size():
    check_same_size((4, 5, 3), (4, 5), 'i.png', 'a.png')
    with pytest.raises(DataError, match=r'a.png: annotation size \(4, 6\) \(H, W\) differs from the '
                       r'size \(4, 5\) of its image i.png'):
        check_same_size((4, 5, 3), (4, 6), 'i.png', 'a.png')


def test_check_panoptic_segments_both_ways():
    ids = np.array([[0, 1001], [2001, 2001]])
    check_panoptic_segments(ids, [1001, 2001], 'p.png')
    with pytest.raises(DataError, match=r'p.png: segment ids \[2001\] are in the PNG but not in'):
        check_panoptic_segments(ids, [1001], 'p.png')
    with pytest.raises(DataError, match=r'p.png: segments \[3001\] of the panoptic JSON have no '):
        check_panoptic_segments(ids, [1001, 2001, 3001], 'p.png')


@pytest.fixture(scope='module')
def panoptic_sample(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes_val')
    generate_shapes_dataset(str(root), num_train=1, num_val=1, size=32, seed=0)
    annotation = json.loads((root / 'panoptic_train.json').read_text())['annotations'][0]
    segments = [dict(s, label=s['category_id'], isthing=bool(s['category_id'] >= 2))
                for s in annotation['segments_info']]
    return root / 'panoptic/train/00000.png', segments


def _load(path, segments, ori_shape=(32, 32)):
    # LoadImageFromFile sets ori_shape (the image as read) and img_shape; test pipelines resize
    # the image (img_shape) before the annotation is loaded.
    return LoadPanopticAnnotations().transform(dict(
        seg_map_path=str(path), img_path='img.png', ori_shape=ori_shape, img_shape=(64, 64),
        segments_info=segments))


def test_panoptic_loader_accepts_consistent_data(panoptic_sample):
    path, segments = panoptic_sample
    results = _load(path, segments)
    assert results['gt_seg_map'].shape == (32, 32)
    assert len(results['panoptic_labels']) == len(segments)


def test_panoptic_loader_rejects_ids_missing_from_the_json(panoptic_sample):
    path, segments = panoptic_sample
    with pytest.raises(DataError, match=rf'{path}: segment ids \[{segments[-1]["id"]}\] are in '):
        _load(path, segments[:-1])


def test_panoptic_loader_rejects_json_segments_missing_from_the_png(panoptic_sample, tmp_path):
    path, segments = panoptic_sample
    with pytest.raises(DataError, match=r'segments \[99001\] of the panoptic JSON have no pixel'):
        _load(path, segments + [dict(segments[0], id=99001)])


def test_panoptic_loader_rejects_a_size_mismatch(panoptic_sample):
    path, segments = panoptic_sample
    with pytest.raises(DataError, match=r'annotation size \(32, 32\) \(H, W\) differs from the '
                       r'size \(32, 40\) of its image img.png'):
        _load(path, segments, ori_shape=(32, 40))


def test_id2rgb_round_trip_used_by_planted_faults(tmp_path):
    # The planted-fault tests write PNGs with id2rgb; the loader must read those ids back.
    ids = np.array([[0, 1001], [5001, 5001]], dtype=np.int32)
    Image.fromarray(id2rgb(ids)).save(tmp_path / 'p.png')
    segments = [dict(id=1001, label=1, isthing=False), dict(id=5001, label=5, isthing=True)]
    results = LoadPanopticAnnotations().transform(dict(
        seg_map_path=str(tmp_path / 'p.png'), ori_shape=(2, 2), segments_info=segments))
    assert results['gt_seg_map'].tolist() == [[255, 1], [5, 5]]
