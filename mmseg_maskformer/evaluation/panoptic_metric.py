"""Panoptic quality as an mmseg metric."""
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS
from prettytable import PrettyTable

from ..core.panoptic_quality import PQStat, pq_report, pq_statistics
from ..datasets.panoptic import load_panoptic_png
from .prediction_files import write_panoptic_json, write_panoptic_png


@METRICS.register_module()
class PanopticQualityMetric(BaseMetric):
    """PQ, SQ and RQ (overall, things, stuff) of ``pred_panoptic_seg`` against the samples'
    panoptic PNGs (``seg_map_path``, with crowd and void regions) and ``segments_info``.

    Predictions and ground truth are compared by class index (``category_id`` of the predicted
    segments, ``label`` of the ground-truth ones); which classes are things comes from the
    dataset's ``thing_classes``. Matching follows the COCO panopticapi (see
    :mod:`mmseg_maskformer.core.panoptic_quality`).

    With ``output_dir`` (``tools/test.py --out``) the predictions are also written there as
    COCO-panoptic files (:mod:`.prediction_files`): ``panoptic/NAME.png`` per image and
    ``panoptic.json``. ``keep_results`` is accepted for the interface of mmseg's ``IoUMetric``
    and ignored (the files are never removed).
    """
    default_prefix = ''

    def __init__(self, collect_device: str = 'cpu', prefix: str = None, backend_args=None,
                 output_dir: Optional[str] = None, keep_results: bool = False):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.backend_args = backend_args
        self.output_dir = output_dir

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'pred_panoptic_seg' not in sample:
                raise KeyError('PanopticQualityMetric needs pred_panoptic_seg: use '
                               "type='mmseg_maskformer.MaskFormerSegmentor' with a decode head "
                               "whose test_cfg has mode='panoptic'")
            prediction = sample['pred_panoptic_seg']['data'][0].cpu().numpy()
            ground_truth = load_panoptic_png(sample['seg_map_path'], self.backend_args)
            # Matched by class index; pq_statistics counts an area the JSON does not give.
            gt_segments = [dict(s, category_id=s['label']) for s in sample['segments_info']]
            statistics = pq_statistics(prediction, sample['pred_segments_info'], ground_truth,
                                       gt_segments)
            annotation = None
            if self.output_dir is not None:
                name = osp.splitext(osp.basename(sample['img_path']))[0]
                annotation = write_panoptic_png(self.output_dir, name, prediction,
                                                sample['pred_segments_info'])
            self.results.append((statistics, annotation))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        total = PQStat()
        for stat, _ in results:
            total += stat
        classes = self.dataset_meta['classes']
        things = set(self.dataset_meta.get('thing_classes', ()))
        if self.output_dir is not None:
            path = write_panoptic_json(
                self.output_dir, [annotation for _, annotation in results], classes,
                [i for i, name in enumerate(classes) if name in things])
            print_log(f'panoptic predictions written to {path} and '
                      f'{osp.join(self.output_dir, "panoptic")}',
                      logger=MMLogger.get_current_instance())
        categories = {i: dict(isthing=int(name in things)) for i, name in enumerate(classes)}
        report = pq_report(total, categories)
        table = PrettyTable(field_names=['', 'PQ', 'SQ', 'RQ', '#categories'])
        for name, suffix, isthing in (('All', '', None), ('Things', '_th', True),
                                      ('Stuff', '_st', False)):
            table.add_row([name] + [f'{report[k + suffix]:.2f}' for k in ('PQ', 'SQ', 'RQ')] +
                          [total.summary(categories, isthing)['n']])
        print_log('panoptic quality:\n' + table.get_string(), logger=MMLogger.get_current_instance())
        return OrderedDict((key, round(value, 2)) for key, value in report.items())
