import numpy as np
import pytest

from mmseg_maskformer.datasets import IgnoreBand


def test_ignore_band_sets_label_rows_only():
    seg = (np.arange(40).reshape(10, 4) % 6).astype(np.uint8)
    image = np.ones((10, 4, 3), dtype=np.uint8)
    results = IgnoreBand(top=0.4, bottom=0.6)({'gt_seg_map': seg.copy(), 'img': image})
    expected = seg.copy()
    expected[4:6] = 255  # rows [0.4 * 10, 0.6 * 10)
    assert np.array_equal(results['gt_seg_map'], expected)
    assert np.array_equal(results['img'], image)


def test_ignore_band_rejects_empty_band():
    with pytest.raises(ValueError, match='0 <= top < bottom <= 1'):
        IgnoreBand(top=0.6, bottom=0.4)
