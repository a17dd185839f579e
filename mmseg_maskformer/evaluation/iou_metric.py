"""mmseg's IoU metric with label-map files for any number of classes."""
import os.path as osp
from typing import Sequence

from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

from .prediction_files import write_label_map


@METRICS.register_module()
class LabelMapIoUMetric(IoUMetric):
    """mmseg's ``IoUMetric`` (same arguments and metrics) whose ``output_dir`` label maps are 16-bit
    PNGs when a class index does not fit in 8 bits: mmseg 1.2.2 writes ``uint8`` (class 300 of
    ADE20K-Full would be saved as 44). ``tools/test.py --out`` uses it in place of ``IoUMetric``."""

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        output_dir, self.output_dir = self.output_dir, None
        try:
            super().process(data_batch, data_samples)
        finally:
            self.output_dir = output_dir
        if output_dir is None:
            return
        num_classes = len(self.dataset_meta['classes'])
        for sample in data_samples:
            labels = sample['pred_sem_seg']['data'].squeeze().cpu().numpy()
            # mmseg writes class k as k + 1 for reduce_zero_label datasets (ADE20K's file format)
            offset = int(bool(sample.get('reduce_zero_label', False)))
            name = osp.splitext(osp.basename(sample['img_path']))[0]
            write_label_map(osp.join(output_dir, f'{name}.png'), labels + offset,
                            num_classes + offset)
