"""Our PQ against mmdet 3.3's implementation (panopticapi rules) on the same files."""

import numpy as np
import pytest
from mmdet.evaluation.functional import pq_compute_single_core
from PIL import Image

from mmseg_maskformer.core.panoptic_quality import PQStat, pq_report, pq_statistics
from mmseg_maskformer.datasets.shapes import id2rgb

CATEGORIES = {1: dict(id=1, name='a', isthing=1), 2: dict(id=2, name='b', isthing=1),
              3: dict(id=3, name='c', isthing=0), 4: dict(id=4, name='d', isthing=0)}


def random_panoptic(rng, size, num_segments, crowd=False):
    """A panoptic map of ``num_segments`` random rectangles on void, with segments_info."""
    seg = np.zeros((size, size), dtype=np.int64)
    segments = []
    for k in range(num_segments):
        y, x = rng.integers(0, size - 4, 2)
        h, w = rng.integers(4, size // 2, 2)
        segment_id = int(rng.integers(1, 2**20))
        seg[y:y + h, x:x + w] = segment_id
        segments.append(dict(id=segment_id, category_id=int(rng.integers(1, 5)),
                             iscrowd=int(crowd and k == 0)))
    present = set(np.unique(seg).tolist())
    segments = [s for s in segments if s['id'] in present]
    for s in segments:
        s['area'] = int((seg == s['id']).sum())
    return seg, segments


def perturbed(rng, seg, segments):
    """A prediction: the ground truth shifted, some labels changed, one segment dropped."""
    pred = np.roll(seg, shift=int(rng.integers(-3, 4)), axis=int(rng.integers(0, 2)))
    info = []
    for s in segments[1:]:
        category = s['category_id'] if rng.random() > 0.2 else int(rng.integers(1, 5))
        info.append(dict(id=s['id'], category_id=category))
    kept = {s['id'] for s in info}
    pred[~np.isin(pred, list(kept))] = 0
    present = set(np.unique(pred).tolist())
    return pred, [s for s in info if s['id'] in present]


@pytest.mark.parametrize('seed', range(5))
def test_pq_equals_mmdet(seed, tmp_path):
    rng = np.random.default_rng(seed)
    gt_dir, pred_dir = tmp_path / 'gt', tmp_path / 'pred'
    gt_dir.mkdir()
    pred_dir.mkdir()
    ours = PQStat()
    annotation_set = []
    for image in range(4):
        gt, gt_segments = random_panoptic(rng, 48, 6, crowd=image == 1)
        pred, pred_segments = perturbed(rng, gt, gt_segments)
        name = f'{image}.png'
        Image.fromarray(id2rgb(gt)).save(gt_dir / name)
        Image.fromarray(id2rgb(pred)).save(pred_dir / name)
        annotation_set.append((dict(image_id=image, file_name=name, segments_info=gt_segments),
                               dict(image_id=image, file_name=name, segments_info=pred_segments)))
        ours += pq_statistics(pred, pred_segments, gt, gt_segments)
    theirs = pq_compute_single_core(0, annotation_set, str(gt_dir), str(pred_dir), CATEGORIES)
    report = pq_report(ours, CATEGORIES)
    for suffix, isthing in (('', None), ('_th', True), ('_st', False)):
        expected, _ = theirs.pq_average(CATEGORIES, isthing=isthing)
        for key in ('pq', 'sq', 'rq'):
            assert report[key.upper() + suffix] == pytest.approx(100 * expected[key], abs=1e-9)


def test_hand_computed_case():
    # One gt segment of 4 px; prediction covers 3 of them plus 1 void px: IoU = 3 / (4 + 4 - 3 - 1).
    gt = np.array([[1, 1, 1, 1, 0, 0]])
    pred = np.array([[0, 7, 7, 7, 7, 0]])
    stat = pq_statistics(pred, [dict(id=7, category_id=3)], gt,
                         [dict(id=1, category_id=3, iscrowd=0)])
    assert stat.tp[3] == 1 and stat.fp[3] == 0 and stat.fn[3] == 0
    assert stat.iou[3] == pytest.approx(3 / 4)


def test_prediction_ids_must_match_segments():
    with pytest.raises(KeyError, match='segment id 5'):
        pq_statistics(np.array([[5]]), [], np.array([[0]]), [])
