"""LabelMapIoUMetric: mmseg's IoUMetric whose --out label maps keep every class index."""
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.evaluation import IoUMetric
from mmseg.structures import SegDataSample
from PIL import Image

from mmseg_maskformer.evaluation import LabelMapIoUMetric


def sample(labels, reduce_zero_label=False):
    data = SegDataSample(metainfo=dict(img_path='/data/images/photo_01.jpg',
                                       reduce_zero_label=reduce_zero_label))
    data.pred_sem_seg = PixelData(data=torch.as_tensor(labels)[None])
    data.gt_sem_seg = PixelData(data=torch.as_tensor(labels)[None])
    return data.to_dict()


@pytest.mark.parametrize('num_classes, reduce_zero_label, dtype', [
    (847, False, np.uint16), (150, True, np.uint8), (255, True, np.uint8), (256, True, np.uint16),
    (256, False, np.uint8)])
def test_label_maps_keep_every_class(tmp_path, num_classes, reduce_zero_label, dtype):
    labels = np.array([[0, 1, num_classes - 1], [num_classes // 2, 255 % num_classes, 7]])
    ours = LabelMapIoUMetric(output_dir=str(tmp_path / 'ours'))
    mmseg = IoUMetric(output_dir=str(tmp_path / 'mmseg'))
    for metric in (ours, mmseg):
        metric.dataset_meta = dict(classes=[f'c{i}' for i in range(num_classes)])
        metric.process({}, [sample(labels, reduce_zero_label)])
    written = np.asarray(Image.open(tmp_path / 'ours' / 'photo_01.png'))
    assert written.dtype == dtype
    np.testing.assert_array_equal(written, labels + int(reduce_zero_label))  # ADE20K's k + 1
    assert ours.results[0][0].tolist() == mmseg.results[0][0].tolist()  # same statistics
    if dtype == np.uint16:  # what mmseg 1.2.2 writes instead
        mmseg_written = np.asarray(Image.open(tmp_path / 'mmseg' / 'photo_01.png'))
        assert (mmseg_written != labels + int(reduce_zero_label)).any()
