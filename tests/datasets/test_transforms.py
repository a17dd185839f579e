"""RandomRangeCrop (detectron2's absolute_range crop) and the COCO-panoptic training pipeline."""
import os

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmseg.registry import DATASETS

import mmseg_maskformer.datasets  # noqa: F401  (registers the transforms)
from mmseg_maskformer.datasets import RandomRangeCrop, generate_shapes_dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COCO = os.path.join(REPO,
                    'configs/maskformer/maskformer_r50-d32_8xb8-554k_coco-panoptic-800x1333.py')


def inputs(height, width):
    rng = np.random.default_rng(height * width)
    return dict(img=rng.integers(0, 256, (height, width, 3), dtype=np.uint8),
                img_shape=(height, width),
                gt_seg_map=rng.integers(0, 7, (height, width), dtype=np.uint8),
                seg_fields=['gt_seg_map'])


def test_crop_sides_are_drawn_from_the_range_clipped_to_the_image():
    np.random.seed(0)
    crop = RandomRangeCrop(size_range=(384, 600))
    heights, widths = set(), set()
    for _ in range(200):
        results = crop(inputs(500, 900))
        height, width = results['img'].shape[:2]
        # detectron2: each side in [min(side, 384), min(side, 600)]
        assert 384 <= height <= 500 and 384 <= width <= 600
        assert results['gt_seg_map'].shape == results['img_shape'] == (height, width)
        heights.add(height)
        widths.add(width)
    assert len(heights) > 50 and len(widths) > 50 and max(widths) > 580


def test_crop_is_a_window_of_the_input():
    np.random.seed(1)
    source = inputs(420, 450)
    results = RandomRangeCrop(size_range=(384, 600))(dict(source, img=source['img'].copy()))
    height, width = results['img'].shape[:2]
    image = source['img']
    matches = [(y, x) for y in range(420 - height + 1) for x in range(450 - width + 1)
               if np.array_equal(image[y:y + height, x:x + width], results['img'])]
    assert len(matches) == 1
    y, x = matches[0]
    np.testing.assert_array_equal(results['gt_seg_map'],
                                  source['gt_seg_map'][y:y + height, x:x + width])


def test_image_smaller_than_the_range_is_kept_whole():
    results = RandomRangeCrop(size_range=(384, 600))(inputs(100, 200))
    assert results['img'].shape[:2] == (100, 200)


def test_bad_range_is_rejected():
    with pytest.raises(ValueError, match='size_range'):
        RandomRangeCrop(size_range=(600, 384))


def test_coco_panoptic_training_pipeline_runs_on_panoptic_data(tmp_path):
    generate_shapes_dataset(str(tmp_path), num_train=4, num_val=1, size=64, seed=0)
    cfg = Config.fromfile(COCO)
    init_default_scope('mmseg')
    dataset = DATASETS.build(dict(
        cfg.train_dataloader.dataset, data_root=str(tmp_path), ann_file='panoptic_train.json',
        img_suffix='.png',
        data_prefix=dict(img_path='img_dir/train', seg_map_path='panoptic/train'),
        pipeline=[]))
    pipeline = Compose(cfg.train_pipeline)
    np.random.seed(0)
    shortest = set()
    for index in range(4):
        for _ in range(5):
            packed = pipeline(dataset[index])
            image = packed['inputs']
            sample = packed['data_samples']
            assert sample.gt_panoptic_seg.data.shape[-2:] == image.shape[-2:]
            assert sample.gt_sem_seg.data.shape[-2:] == image.shape[-2:]
            shortest.add(min(image.shape[-2:]))
    assert shortest <= {480 + 32 * i for i in range(11)}  # both branches end with that resize
