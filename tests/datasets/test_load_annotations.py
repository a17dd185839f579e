"""An annotation whose size differs from its image's stops the configs' pipelines at load time,
naming both files, also where a resize would otherwise stretch it onto the image unnoticed."""
import re

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import DATASETS
from PIL import Image

from cli_testing import CONFIG as TINY
from mmseg_maskformer.datasets import (Load16BitAnnotations, LoadSizeCheckedAnnotations,
                                       generate_shapes_dataset)
from mmseg_maskformer.datasets.validation import DataError

# The zoo configs' training resize (configs/_base_/datasets/ade20k.py), scaled to the tiny data.
RESIZE = dict(type='RandomChoiceResize', scales=[24, 48, 64], resize_type='ResizeShortestEdge',
              max_size=128)


@pytest.fixture
def small_annotation(tmp_path):
    """32×32 Shapes data whose training annotation 00001.png is 16×16."""
    generate_shapes_dataset(str(tmp_path), num_train=4, num_val=2, size=32, seed=0)
    path = tmp_path / 'ann_dir/train/00001.png'
    Image.open(path).resize((16, 16), Image.NEAREST).save(path)
    return path


def size_error(annotation):
    image = str(annotation).replace('ann_dir', 'img_dir')
    return re.escape(f'{annotation}: annotation size (16, 16) (H, W) differs from the size '
                     f'(32, 32) of its image {image}')


def tiny_config(data_root):
    """The tiny Shapes config on ``data_root`` with the zoo configs' resize after loading."""
    cfg = Config.fromfile(TINY)
    init_default_scope('mmseg')
    pipeline = cfg.train_dataloader.dataset.pipeline
    pipeline.insert(2, RESIZE)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].update(num_workers=0, persistent_workers=False)
        cfg[loader].dataset.data_root = str(data_root)
    return cfg


def test_resizing_training_pipeline_rejects_the_annotation_naming_both_files(small_annotation):
    cfg = tiny_config(small_annotation.parents[2])
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    assert dataset.get_data_info(1)['seg_map_path'] == str(small_annotation)
    sample = dataset[0]
    assert sample['inputs'].shape[-2:] == sample['data_samples'].gt_sem_seg.shape
    with pytest.raises(DataError, match=size_error(small_annotation)):
        dataset[1]


def test_first_training_iteration_stops_at_the_annotation(small_annotation, tmp_path):
    cfg = tiny_config(small_annotation.parents[2])
    cfg.train_dataloader.batch_size = 4  # the whole split, the wrong annotation included
    cfg.train_cfg.max_iters = 1
    cfg.work_dir = str(tmp_path / 'work')
    runner = Runner.from_cfg(cfg)
    with pytest.raises(DataError, match=size_error(small_annotation)):
        runner.train()
    assert runner.iter == 0


def test_test_pipeline_compares_with_the_image_as_read(tmp_path):
    # mmseg's test pipelines resize the image before loading its annotation; a right-size
    # annotation must pass there, a wrong one fail.
    generate_shapes_dataset(str(tmp_path), num_train=0, num_val=2, size=32, seed=0)
    cfg = tiny_config(tmp_path)
    dataset_cfg = cfg.val_dataloader.dataset
    dataset_cfg.pipeline.insert(1, dict(type='Resize', scale=(48, 48), keep_ratio=True))
    dataset = DATASETS.build(dataset_cfg)
    sample = dataset[0]['data_samples']
    assert sample.img_shape == (48, 48) and sample.gt_sem_seg.shape == (32, 32)
    path = tmp_path / 'ann_dir/val/00001.png'
    Image.open(path).resize((16, 16), Image.NEAREST).save(path)
    with pytest.raises(DataError, match=size_error(path)):
        dataset[1]


@pytest.mark.parametrize('loader', [LoadSizeCheckedAnnotations, Load16BitAnnotations])
def test_loaders_share_the_check(loader, tmp_path):
    path = tmp_path / 'a.png'
    labels = np.zeros((4, 6), dtype=np.uint16 if loader is Load16BitAnnotations else np.uint8)
    Image.fromarray(labels).save(path)
    results = dict(seg_map_path=str(path), img_path='i.png', reduce_zero_label=False,
                   seg_fields=[])
    assert loader()(dict(results, ori_shape=(4, 6)))['gt_seg_map'].shape == (4, 6)
    assert loader()(results)['gt_seg_map'].shape == (4, 6)  # no image loaded: nothing to compare
    with pytest.raises(DataError, match=re.escape(f'{path}: annotation size (4, 6) (H, W) '
                                                  'differs from the size (6, 4) of its image i')):
        loader()(dict(results, ori_shape=(6, 4)))


@pytest.mark.parametrize('loader', [LoadSizeCheckedAnnotations, Load16BitAnnotations])
def test_loaders_pass_bare_images_through_for_mmseg_inference(loader):
    # mmseg's inference_model / MMSegInferencer drop only steps named LoadAnnotations.
    results = dict(img=np.zeros((5, 7, 3), np.uint8), ori_shape=(5, 7), img_shape=(5, 7))
    assert loader().transform(dict(results)).keys() == results.keys()
