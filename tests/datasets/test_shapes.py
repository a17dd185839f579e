import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmseg_maskformer.datasets.shapes import (CATEGORIES, CLASSES, OFFSET, PALETTE, STUFF_CLASSES,
                                              THING_CLASSES, generate_shapes_dataset, rgb2id,
                                              render_sample)

SMALL = dict(num_train=8, num_val=4, size=64, seed=0)
SPLITS = ('train', 'val')


def _files(root):
    return {
        os.path.relpath(os.path.join(d, f), root): open(os.path.join(d, f), 'rb').read()
        for d, _, names in os.walk(root) for f in names
    }


def _mtimes(root):
    return {
        os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
        for d, _, names in os.walk(root) for f in names
    }


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    assert generate_shapes_dataset(root, **SMALL)
    return root


def _load(root, folder, split, name):
    return np.asarray(Image.open(root / folder / split / name))


def test_layout_and_counts(shapes_root):
    for split in SPLITS:
        expected = [f'{i:05d}.png' for i in range(SMALL[f'num_{split}'])]
        for folder in ('img_dir', 'ann_dir', 'panoptic'):
            assert sorted(os.listdir(shapes_root / folder / split)) == expected
        coco = json.loads((shapes_root / f'panoptic_{split}.json').read_text())
        assert [im['file_name'] for im in coco['images']] == expected
        assert [a['file_name'] for a in coco['annotations']] == expected
        assert [a['image_id'] for a in coco['annotations']] == [im['id'] for im in coco['images']]
        assert coco['categories'] == [dict(c) for c in CATEGORIES]
    assert json.loads((shapes_root / 'meta.json').read_text())['size'] == SMALL['size']


def test_images_and_labels(shapes_root):
    seen = set()
    for split in SPLITS:
        for name in os.listdir(shapes_root / 'img_dir' / split):
            image = Image.open(shapes_root / 'img_dir' / split / name)
            label = Image.open(shapes_root / 'ann_dir' / split / name)
            assert image.mode == 'RGB' and label.mode == 'L'
            assert image.size == label.size == (SMALL['size'], SMALL['size'])
            values = np.unique(np.asarray(label))
            assert values.max() < len(CLASSES)  # no ignore pixels at all
            seen.update(values.tolist())
    assert 0 in seen and seen & set(range(len(STUFF_CLASSES), len(CLASSES)))


def test_panoptic_matches_json_and_semantic(shapes_root):
    thing_ids = {c['id'] for c in CATEGORIES if c['isthing']}
    for split in SPLITS:
        coco = json.loads((shapes_root / f'panoptic_{split}.json').read_text())
        for ann in coco['annotations']:
            ids = rgb2id(_load(shapes_root, 'panoptic', split, ann['file_name']))
            semantic = _load(shapes_root, 'ann_dir', split, ann['file_name'])
            segments = {s['id']: s for s in ann['segments_info']}
            assert len(segments) == len(ann['segments_info'])
            present, areas = np.unique(ids, return_counts=True)
            assert 0 not in present  # no void pixels
            assert set(present.tolist()) == set(segments)
            category_map = np.zeros_like(semantic)
            for seg_id, area in zip(present.tolist(), areas.tolist()):
                seg = segments[seg_id]
                assert seg['area'] == area and seg['iscrowd'] == 0
                assert seg_id // OFFSET == seg['category_id']
                ys, xs = np.nonzero(ids == seg_id)
                assert seg['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                       ys.max() - ys.min() + 1]
                category_map[ids == seg_id] = seg['category_id']
            np.testing.assert_array_equal(category_map, semantic)
            stuff = [s['category_id'] for s in segments.values()
                     if s['category_id'] not in thing_ids]
            assert len(stuff) == len(set(stuff))


def test_single_image_regenerates(shapes_root):
    sample = render_sample(3, 'val', SMALL['size'], SMALL['seed'])
    np.testing.assert_array_equal(sample.image, _load(shapes_root, 'img_dir', 'val', '00003.png'))
    np.testing.assert_array_equal(sample.semantic,
                                  _load(shapes_root, 'ann_dir', 'val', '00003.png'))
    other = render_sample(3, 'train', SMALL['size'], SMALL['seed'])
    assert not np.array_equal(sample.image, other.image)


def test_deterministic(shapes_root, tmp_path):
    generate_shapes_dataset(tmp_path / 'again', **SMALL)
    assert _files(tmp_path / 'again') == _files(shapes_root)
    generate_shapes_dataset(tmp_path / 'seed1', **dict(SMALL, seed=1))
    other = _files(tmp_path / 'seed1')
    assert other['img_dir/train/00000.png'] != _files(shapes_root)['img_dir/train/00000.png']


def test_idempotent_and_regenerates_on_change(tmp_path):
    root = tmp_path / 'shapes'
    assert generate_shapes_dataset(root, **SMALL)
    before = _mtimes(root)
    assert not generate_shapes_dataset(root, **SMALL)
    assert _mtimes(root) == before

    assert generate_shapes_dataset(root, **dict(SMALL, num_train=3))
    assert len(os.listdir(root / 'img_dir' / 'train')) == 3  # no stale files left
    assert json.loads((root / 'meta.json').read_text())['num_train'] == 3

    (root / 'ann_dir' / 'val' / '00000.png').unlink()
    assert generate_shapes_dataset(root, **dict(SMALL, num_train=3))
    assert (root / 'ann_dir' / 'val' / '00000.png').is_file()


def test_classes_metadata():
    assert len(CLASSES) == len(PALETTE) == len(CATEGORIES)
    assert set(THING_CLASSES) | set(STUFF_CLASSES) == set(CLASSES)
    assert not set(THING_CLASSES) & set(STUFF_CLASSES)
    assert [c['id'] for c in CATEGORIES] == list(range(len(CLASSES)))


def test_mmseg_dataset_builds(shapes_root):
    pytest.importorskip('mmseg.datasets')
    from mmengine.registry import init_default_scope
    from mmengine.utils import import_modules_from_strings
    from mmseg.registry import DATASETS

    import_modules_from_strings(['mmseg_maskformer.datasets'])  # what custom_imports does
    from mmseg_maskformer.datasets import ShapesDataset
    assert DATASETS.get('ShapesDataset') is ShapesDataset

    init_default_scope('mmseg')
    dataset = DATASETS.build(
        dict(
            type='ShapesDataset',
            data_root=str(shapes_root),
            data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
            pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='LoadAnnotations'),
                dict(type='PackSegInputs')
            ]))
    assert len(dataset) == SMALL['num_val']
    meta = dataset.metainfo
    assert tuple(meta['classes']) == CLASSES
    assert tuple(meta['thing_classes']) == THING_CLASSES
    assert tuple(meta['stuff_classes']) == STUFF_CLASSES
    assert [tuple(c) for c in meta['palette']] == list(PALETTE)
    assert meta['reduce_zero_label'] is False

    item = dataset[1]
    size = SMALL['size']
    assert tuple(item['inputs'].shape) == (3, size, size)
    seg = item['data_samples'].gt_sem_seg.data
    assert tuple(seg.shape) == (1, size, size)
    np.testing.assert_array_equal(seg[0].numpy(),
                                  _load(shapes_root, 'ann_dir', 'val', '00001.png'))


def test_generator_imports_without_openmmlab(tmp_path):
    # Blocking the OpenMMLab packages stands in for an environment that lacks them.
    code = ('import sys\n'
            'for name in ("mmseg", "mmcv", "mmengine"):\n'
            '    sys.modules[name] = None\n'
            'from mmseg_maskformer.datasets import generate_shapes_dataset\n'
            f'assert generate_shapes_dataset({str(tmp_path)!r}, num_train=1, num_val=1, size=32)\n'
            'assert "torch" not in sys.modules\n')
    repo_root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, '-c', code], cwd=repo_root, check=True)
    assert (tmp_path / 'meta.json').is_file()
