"""Layer 3: evaluation metrics registered in mmseg's ``METRICS``."""
from .iou_metric import LabelMapIoUMetric
from .panoptic_metric import PanopticQualityMetric

__all__ = ['LabelMapIoUMetric', 'PanopticQualityMetric']
