"""``config_dataset_meta``: the class names and colours a converted checkpoint carries, from the
config alone, against the datasets mmseg builds (``lazy_init=True``: no data needed) as oracle."""
import glob
import json
import os
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from mmseg.registry import DATASETS

from mmseg_maskformer.converters import config_dataset_meta, random_palette
from mmseg_maskformer.datasets import generate_shapes_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'maskformer', '*.py')))
# Thing classes of the panoptic datasets: COCO 2017 panoptic's 80 of 133; ADE20K panoptic's 100
# of 150 (facebookresearch/MaskFormer mask_former/data/datasets/register_ade20k_panoptic.py,
# isthing=1); the Shapes shapes.
THING_COUNTS = {'coco-panoptic': 80, 'ade20k-panoptic': 100, 'shapes': 4}


def thing_count(config: str):
    return next((n for key, n in THING_COUNTS.items() if key in osp.basename(config)), None)


def lazily_built(dataset_cfg) -> dict:
    """mmseg's own metainfo of the dataset (built without loading its file list)."""
    return DATASETS.build(dict(dataset_cfg, lazy_init=True)).metainfo


def tiny_cfg(dataset: dict, num_classes: int) -> Config:
    return Config(dict(model=dict(decode_head=dict(num_classes=num_classes)),
                       test_dataloader=dict(dataset=dataset)))


def test_the_configs_are_all_there():
    assert len(CONFIGS) >= 29  # 24 zoo configs, 4 Shapes ones, the custom-dataset template


@pytest.mark.parametrize('config', CONFIGS, ids=lambda path: osp.basename(path)[:-3])
def test_every_config_names_each_class_of_its_model(config):
    cfg = Config.fromfile(config)
    meta = config_dataset_meta(cfg)
    classes = meta['classes']
    assert len(classes) == cfg.model.decode_head.num_classes
    assert len(set(classes)) == len(classes)
    palette = np.asarray(meta['palette'])
    assert palette.shape == (len(classes), 3) and palette.min() >= 0 and palette.max() <= 255
    expected_things = thing_count(config)
    if expected_things is None:
        assert 'thing_classes' not in meta
    else:
        assert len(meta['thing_classes']) == expected_things
        assert set(meta['thing_classes']) <= set(classes)
    dataset_cfg = cfg.test_dataloader.dataset
    if dataset_cfg.type != 'CocoPanopticSegDataset':  # it reads its classes from the data
        expected = lazily_built(dataset_cfg)
        assert classes == tuple(expected['classes'])
        assert meta['palette'] == [list(c) for c in expected['palette']]


def test_panoptic_datasets_are_those_of_the_released_annotations():
    from mmdet.datasets import CocoPanopticDataset

    coco = config_dataset_meta(Config.fromfile(osp.join(
        REPO, 'configs/maskformer/maskformer_r50-d32_8xb8-554k_coco-panoptic-800x1333.py')))
    assert coco['classes'] == CocoPanopticDataset.METAINFO['classes']
    assert coco['thing_classes'] == coco['classes'][:80]  # things first, as in the JSON
    # The JSON's categories have no colours: mmseg's seeded palette, as for any dataset without.
    assert coco['palette'] == random_palette(133)
    ade = config_dataset_meta(Config.fromfile(osp.join(
        REPO, 'configs/maskformer/maskformer_r50-d32_8xb2-720k_ade20k-panoptic-640x640.py')))
    assert ade['classes'][:8] == ('wall', 'building', 'sky', 'floor', 'tree', 'ceiling',
                                  'road, route', 'bed')
    assert {'bed', 'person', 'car'} <= set(ade['thing_classes'])
    assert not {'wall', 'sky', 'road, route'} & set(ade['thing_classes'])
    assert ade['palette'][:2] == [[120, 120, 120], [180, 120, 120]]


def test_panoptic_categories_on_disk_are_read_and_agree_with_the_released_ones(tmp_path):
    from mmseg_maskformer.datasets import CocoPanopticSegDataset  # noqa: F401  registers it

    cfg = Config.fromfile(
        osp.join(REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-panoptic-128x128.py'))
    without_data = config_dataset_meta(cfg)
    generate_shapes_dataset(str(tmp_path), num_train=1, num_val=1, size=32, seed=0)
    cfg.test_dataloader.dataset.data_root = str(tmp_path)
    with_data = config_dataset_meta(cfg)
    assert with_data == without_data
    built = lazily_built(cfg.test_dataloader.dataset)
    assert with_data['classes'] == tuple(built['classes'])
    assert with_data['palette'] == [list(c) for c in built['palette']]
    assert with_data['thing_classes'] == tuple(built['thing_classes'])

    # A dataset of one's own: the categories of its file, under the config's metainfo.
    with open(tmp_path / 'mine.json', 'w') as f:
        json.dump(dict(categories=[dict(id=7, name='sky', isthing=0),
                                   dict(id=9, name='dog', isthing=1)]), f)
    dataset = dict(type='CocoPanopticSegDataset', data_root=str(tmp_path), ann_file='mine.json')
    meta = config_dataset_meta(tiny_cfg(dataset, 2))
    assert meta == dict(classes=('sky', 'dog'), palette=random_palette(2), thing_classes=('dog', ))
    meta = config_dataset_meta(tiny_cfg(dict(dataset, metainfo=dict(
        palette=[[1, 2, 3], [4, 5, 6]])), 2))
    assert meta['palette'] == [[1, 2, 3], [4, 5, 6]]


def test_random_palette_is_the_one_mmseg_gives(tmp_path):
    classes = tuple(f'c{i}' for i in range(300))
    expected = lazily_built(dict(type='BaseSegDataset', data_root=str(tmp_path),
                                 metainfo=dict(classes=classes)))['palette']
    state = np.random.get_state()[1].copy()
    assert random_palette(300) == expected
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_metainfo_override_selects_classes_as_mmseg(tmp_path):
    dataset = dict(type='ADE20KDataset', data_root=str(tmp_path),
                   metainfo=dict(classes=('sky', 'wall', 'person')))
    meta = config_dataset_meta(tiny_cfg(dataset, 3))
    built = lazily_built(dataset)
    assert meta['classes'] == ('sky', 'wall', 'person') == tuple(built['classes'])
    assert meta['palette'] == [list(c) for c in built['palette']]


def test_dataset_wrappers_are_looked_through(tmp_path):
    shapes = dict(type='ShapesDataset', data_root=str(tmp_path))
    expected = config_dataset_meta(tiny_cfg(shapes, 6))
    assert config_dataset_meta(tiny_cfg(dict(type='RepeatDataset', times=2, dataset=shapes),
                                        6)) == expected
    assert config_dataset_meta(tiny_cfg(dict(type='ConcatDataset', datasets=[shapes, shapes]),
                                        6)) == expected
    other = dict(type='CityscapesDataset', data_root=str(tmp_path))
    with pytest.raises(ValueError, match='different classes'):
        config_dataset_meta(tiny_cfg(dict(type='ConcatDataset', datasets=[shapes, other]), 6))


def test_bad_configs_are_named(tmp_path):
    shapes = dict(type='ShapesDataset', data_root=str(tmp_path))
    with pytest.raises(ValueError, match=r'6 classes but its model predicts 7'):
        config_dataset_meta(tiny_cfg(shapes, 7))
    with pytest.raises(ValueError, match='no test_dataloader'):
        config_dataset_meta(Config(dict(model=dict(decode_head=dict(num_classes=6)))))
    with pytest.raises(ValueError, match='names no classes'):
        config_dataset_meta(tiny_cfg(dict(type='BaseSegDataset'), 6))
    with pytest.raises(ValueError, match="'NoSuchDataset' is not registered"):
        config_dataset_meta(tiny_cfg(dict(type='NoSuchDataset'), 6))
    missing = osp.join(str(tmp_path), 'elsewhere', 'my_panoptic.json')
    with pytest.raises(ValueError, match=f'{missing}.*metainfo=dict'):
        config_dataset_meta(tiny_cfg(dict(type='CocoPanopticSegDataset',
                                          ann_file=missing), 6))
    assert not os.path.exists(missing)


def test_checkpoint_dataset_meta_reads_mmseg_1_and_0_checkpoints():
    from mmseg_maskformer.converters import checkpoint_dataset_meta

    names = ('a', 'b', 'c')
    meta = dict(dataset_meta=dict(classes=list(names), palette=[[1, 2, 3]] * 3,
                                  thing_classes=('b', ), label_map=None))
    assert checkpoint_dataset_meta(meta, 'x.pth', 3) == dict(
        classes=names, palette=[[1, 2, 3]] * 3, thing_classes=('b', ))
    # mmseg 0.x; no palette: mmseg's seeded one.
    assert checkpoint_dataset_meta(dict(CLASSES=names), 'x.pth', 3) == dict(
        classes=names, palette=random_palette(3))
    assert checkpoint_dataset_meta(dict(), 'x.pth', 3) is None
    assert checkpoint_dataset_meta(None, 'x.pth', 3) is None
    with pytest.raises(ValueError, match=r'x\.pth names 3 classes .* predicts 4'):
        checkpoint_dataset_meta(meta, 'x.pth', 4)
    with pytest.raises(ValueError, match=r'x\.pth: the palette .* shape \(2, 3\) for 3 classes'):
        checkpoint_dataset_meta(dict(dataset_meta=dict(classes=names, palette=[[0, 0, 0]] * 2)),
                                'x.pth', 3)
    with pytest.raises(ValueError, match=r'x\.pth: the palette .* \(0-255\)'):
        checkpoint_dataset_meta(dict(dataset_meta=dict(classes=names, palette=[[0, 0, 256]] * 3)),
                                'x.pth', 3)
