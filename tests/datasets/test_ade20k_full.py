"""ADE20K-Full: class table, 16-bit label loading, and a training step on 16-bit labels."""
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS, MODELS
from PIL import Image

from mmseg_maskformer.datasets import ADE20K_FULL_CLASSES, Load16BitAnnotations

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO,
                      'configs/maskformer/maskformer_r50-d32_8xb2-200k_ade20k-full-512x512.py')
TINY = os.path.join(REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-128x128.py')
IGNORE = 65535


def test_class_table_is_the_official_one():
    # Entries of ADE20K_SEM_SEG_FULL_CATEGORIES (facebookresearch/MaskFormer
    # mask_former/data/datasets/register_ade20k_full.py) at their trainId.
    assert len(ADE20K_FULL_CLASSES) == 847 == len(set(ADE20K_FULL_CLASSES))
    assert ADE20K_FULL_CLASSES[0] == 'wall'
    assert ADE20K_FULL_CLASSES[72] == 'stove, kitchen stove, range, kitchen range, cooking stove'
    assert ADE20K_FULL_CLASSES[79] == ('computer, computing machine, computing device, data '
                                       'processor, electronic computer, information processing '
                                       'system')
    assert ADE20K_FULL_CLASSES[846] == 'adding machine, totalizer, totaliser'


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """Two images in the official layout, labels with IDs above 255 and the ignore value."""
    root = tmp_path_factory.mktemp('ade20k_full')
    rng = np.random.default_rng(0)
    for split in ('training', 'validation'):
        os.makedirs(root / 'images_detectron2' / split)
        os.makedirs(root / 'annotations_detectron2' / split)
        for i in range(2):
            label = np.full((48, 64), 300, dtype=np.uint16)
            label[:, 32:] = 846
            label[:24, :16] = 7
            label[40:, :] = IGNORE
            Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(
                root / 'images_detectron2' / split / f'ADE_{split}_{i}.jpg')
            Image.fromarray(label).save(
                root / 'annotations_detectron2' / split / f'ADE_{split}_{i}.tif')
    return root


def expected_label():
    label = np.full((48, 64), 300, dtype=np.uint16)
    label[:, 32:] = 846
    label[:24, :16] = 7
    label[40:, :] = IGNORE
    return label


def test_16bit_labels_load_unchanged_where_mmseg_loader_truncates(data_root):
    path = str(data_root / 'annotations_detectron2/training/ADE_training_0.tif')
    results = Load16BitAnnotations()(dict(seg_map_path=path, reduce_zero_label=False,
                                          seg_fields=[]))
    assert results['gt_seg_map'].dtype == np.uint16
    np.testing.assert_array_equal(results['gt_seg_map'], expected_label())
    truncated = LoadAnnotations()(dict(seg_map_path=path, reduce_zero_label=False, seg_fields=[]))
    np.testing.assert_array_equal(truncated['gt_seg_map'], expected_label().astype(np.uint8))
    assert truncated['gt_seg_map'].max() < 256  # why a 16-bit loader is needed


def test_8bit_label_file_is_rejected_with_its_name(tmp_path):
    path = str(tmp_path / 'eight_bit.png')
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path)
    with pytest.raises(ValueError, match='eight_bit.png: expected a single-channel 16-bit'):
        Load16BitAnnotations()(dict(seg_map_path=path, reduce_zero_label=False, seg_fields=[]))


def dataset_from_config(data_root, split, pipeline):
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmseg')
    loader = cfg.train_dataloader if split == 'training' else cfg.test_dataloader
    dataset_cfg = dict(loader.dataset, data_root=str(data_root), pipeline=pipeline)
    return cfg, DATASETS.build(dataset_cfg)


def test_dataset_and_test_pipeline_keep_16bit_labels(data_root):
    cfg = Config.fromfile(CONFIG)
    _, dataset = dataset_from_config(data_root, 'validation', cfg.test_pipeline)
    assert len(dataset) == 2 and dataset.metainfo['classes'] == ADE20K_FULL_CLASSES
    sample = dataset[0]['data_samples']
    assert sample.img_path.endswith('ADE_validation_0.jpg')
    np.testing.assert_array_equal(sample.gt_sem_seg.data[0].numpy(), expected_label())


def test_training_step_on_16bit_labels(data_root):
    cfg = Config.fromfile(CONFIG)
    # The config's training pipeline with a 64×64 crop instead of 512×512, so that a tiny model
    # trains on it; resize, crop, flip and padding keep the 16-bit labels and the ignore value.
    pipeline = [dict(t, crop_size=(64, 64)) if t.type == 'RandomCrop' else t
                for t in cfg.train_pipeline]
    pipeline[2] = dict(pipeline[2], scales=[48, 64])
    _, dataset = dataset_from_config(data_root, 'training', pipeline)
    tiny = Config.fromfile(TINY)
    tiny.model.data_preprocessor.update(size=(80, 80),
                                        seg_pad_val=cfg.model.data_preprocessor.seg_pad_val)
    tiny.model.decode_head.update(num_classes=cfg.model.decode_head.num_classes,
                                  ignore_index=cfg.model.decode_head.ignore_index)
    model = MODELS.build(tiny.model)
    model.init_weights()
    batch = pseudo_collate([dataset[0], dataset[1]])
    for sample in batch['data_samples']:
        labels = set(sample.gt_sem_seg.data.unique().tolist())
        assert {300, 846, IGNORE} <= labels <= {7, 300, 846, IGNORE}
    processed = model.data_preprocessor(batch, training=True)
    gt = processed['data_samples'][0].gt_sem_seg.data
    assert gt.shape[-2:] == (80, 80) and (gt[..., 64:, :] == IGNORE).all()  # padded with 65535
    labels, masks = model.decode_head.segments_from_samples(processed['data_samples'])
    assert {300, 846} <= set(labels[0].tolist()) and IGNORE not in labels[0].tolist()
    assert not masks[0][:, gt[0] == IGNORE].any()  # ignored pixels are negatives in every mask
    optim_wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-4))
    before = model.decode_head.cls_embed.weight.detach().clone()
    losses = model.train_step(batch, optim_wrapper)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['decode.loss_mask'] > 0
    assert not torch.equal(before, model.decode_head.cls_embed.weight)
