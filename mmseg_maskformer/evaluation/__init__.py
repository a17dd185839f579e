"""Layer 3: evaluation metrics registered in mmseg's ``METRICS``."""
from .panoptic_metric import PanopticQualityMetric

__all__ = ['PanopticQualityMetric']
