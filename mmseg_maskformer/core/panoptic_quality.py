"""Panoptic quality (Kirillov et al., CVPR 2019) with the COCO panopticapi matching rules.

A predicted and a ground-truth segment of the same category match when their IoU exceeds 0.5,
where the union leaves out the prediction's overlap with void. Crowd ground truth is never
matched; an unmatched prediction that lies more than half on void (or on a crowd region of its
category) is not a false positive.
"""
from collections import defaultdict
from typing import Dict, Iterable, List, Mapping, Optional

import numpy as np

VOID = 0
_OFFSET = 2**32


class PQStat:
    """Per-category true positives, false positives, false negatives and summed IoU."""

    def __init__(self):
        self.tp = defaultdict(int)
        self.fp = defaultdict(int)
        self.fn = defaultdict(int)
        self.iou = defaultdict(float)

    def __iadd__(self, other: 'PQStat') -> 'PQStat':
        for name in ('tp', 'fp', 'fn', 'iou'):
            mine = getattr(self, name)
            for key, value in getattr(other, name).items():
                mine[key] += value
        return self

    def summary(self, categories: Mapping[int, dict], isthing: Optional[bool] = None) -> Dict[str, float]:
        """Mean PQ, SQ, RQ (as fractions) over the categories that occur, optionally only things
        (``isthing=True``) or stuff (``False``); ``n`` is how many categories were averaged."""
        pq = sq = rq = 0.0
        n = 0
        for category, info in categories.items():
            if isthing is not None and bool(info.get('isthing', 0)) != isthing:
                continue
            tp, fp, fn = self.tp[category], self.fp[category], self.fn[category]
            if tp + fp + fn == 0:
                continue
            n += 1
            denominator = tp + 0.5 * fp + 0.5 * fn
            pq += self.iou[category] / denominator
            sq += self.iou[category] / tp if tp else 0.0
            rq += tp / denominator
        if n == 0:
            return dict(pq=0.0, sq=0.0, rq=0.0, n=0)
        return dict(pq=pq / n, sq=sq / n, rq=rq / n, n=n)


def pq_statistics(pred_seg: np.ndarray, pred_segments: Iterable[dict], gt_seg: np.ndarray,
                  gt_segments: Iterable[dict]) -> PQStat:
    """Matches one image.

    Args:
        pred_seg, gt_seg: (H, W) integer segment-id maps, 0 = void.
        pred_segments: ``{'id', 'category_id'}`` per predicted segment.
        gt_segments: ``{'id', 'category_id', 'iscrowd'?, 'area'?}`` per ground-truth segment; a
            missing area is counted from ``gt_seg``.
    """
    if pred_seg.shape != gt_seg.shape:
        raise ValueError(f'prediction {pred_seg.shape} and ground truth {gt_seg.shape} differ in size')
    pred_info = {int(s['id']): dict(s) for s in pred_segments}
    gt_info = {int(s['id']): dict(s) for s in gt_segments}
    ids, counts = np.unique(pred_seg, return_counts=True)
    for segment_id, count in zip(ids.tolist(), counts.tolist()):
        if segment_id == VOID:
            continue
        if segment_id not in pred_info:
            raise KeyError(f'predicted segment id {segment_id} is in the map but not in the segments')
        pred_info[segment_id]['area'] = count
    missing = [i for i, s in pred_info.items() if 'area' not in s]
    if missing:
        raise KeyError(f'predicted segments {missing} are listed but cover no pixel')
    ids, counts = np.unique(gt_seg, return_counts=True)
    gt_areas = dict(zip(ids.tolist(), counts.tolist()))
    for segment_id, info in gt_info.items():
        info.setdefault('area', gt_areas.get(segment_id, 0))

    pairs = gt_seg.astype(np.uint64) * _OFFSET + pred_seg.astype(np.uint64)
    ids, counts = np.unique(pairs, return_counts=True)
    overlap = {(int(i // _OFFSET), int(i % _OFFSET)): int(c) for i, c in zip(ids, counts)}

    stat = PQStat()
    gt_matched, pred_matched = set(), set()
    for (gt_id, pred_id), intersection in overlap.items():
        gt, pred = gt_info.get(gt_id), pred_info.get(pred_id)
        if gt is None or pred is None or gt.get('iscrowd', 0) == 1:
            continue
        if gt['category_id'] != pred['category_id']:
            continue
        union = pred['area'] + gt['area'] - intersection - overlap.get((VOID, pred_id), 0)
        iou = intersection / union
        if iou > 0.5:
            stat.tp[gt['category_id']] += 1
            stat.iou[gt['category_id']] += iou
            gt_matched.add(gt_id)
            pred_matched.add(pred_id)

    crowd_of_category = {}
    for gt_id, gt in gt_info.items():
        if gt_id in gt_matched:
            continue
        if gt.get('iscrowd', 0) == 1:
            crowd_of_category[gt['category_id']] = gt_id
            continue
        stat.fn[gt['category_id']] += 1
    for pred_id, pred in pred_info.items():
        if pred_id in pred_matched:
            continue
        ignored = overlap.get((VOID, pred_id), 0)
        if pred['category_id'] in crowd_of_category:
            ignored += overlap.get((crowd_of_category[pred['category_id']], pred_id), 0)
        if ignored / pred['area'] > 0.5:
            continue
        stat.fp[pred['category_id']] += 1
    return stat


def pq_report(stat: PQStat, categories: Mapping[int, dict]) -> Dict[str, float]:
    """``PQ``, ``SQ``, ``RQ`` overall and ``*_th`` (things) / ``*_st`` (stuff), in percent."""
    report = {}
    for suffix, isthing in (('', None), ('_th', True), ('_st', False)):
        summary = stat.summary(categories, isthing)
        for key in ('pq', 'sq', 'rq'):
            report[key.upper() + suffix] = 100 * summary[key]
    return report


__all__: List[str] = ['PQStat', 'VOID', 'pq_report', 'pq_statistics']
