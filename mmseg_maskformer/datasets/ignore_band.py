"""A fixed band of ignored label rows, for experiments on ignore pixels (``ignore_mode``)."""
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS


@TRANSFORMS.register_module()
class IgnoreBand(BaseTransform):
    """Sets the label-map rows ``[top * H, bottom * H)`` to ``ignore_index``; the image is kept.

    Args:
        top, bottom: the band as fractions of the height, 0 <= top < bottom <= 1.
        ignore_index: the label written into the band.
    """

    def __init__(self, top: float = 0.4, bottom: float = 0.6, ignore_index: int = 255):
        if not 0 <= top < bottom <= 1:
            raise ValueError(f'IgnoreBand needs 0 <= top < bottom <= 1, got top={top}, '
                             f'bottom={bottom}')
        self.top, self.bottom, self.ignore_index = top, bottom, ignore_index

    def transform(self, results: dict) -> dict:
        seg = results['gt_seg_map'].copy()
        height = seg.shape[0]
        seg[round(self.top * height):round(self.bottom * height)] = self.ignore_index
        results['gt_seg_map'] = seg
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(top={self.top}, bottom={self.bottom}, '
                f'ignore_index={self.ignore_index})')
