"""Panoptic data, training targets, inference and PQ through mmseg's APIs on tiny Shapes data."""
import os

import numpy as np
import pytest
import torch
from mmdet.evaluation.functional import pq_compute_single_core
from mmengine.dataset import pseudo_collate
from mmseg.registry import DATASETS, METRICS, MODELS
from PIL import Image

import mmseg_maskformer.evaluation  # noqa: F401
from mmseg_maskformer.datasets.panoptic import load_panoptic_png
from mmseg_maskformer.datasets.shapes import CATEGORIES, generate_shapes_dataset, id2rgb

from head_testing import tiny_segmentor


@pytest.fixture(scope='module')
def shapes_root(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('shapes'))
    generate_shapes_dataset(root, num_train=4, num_val=2, size=64, seed=0)
    return root


def panoptic_dataset(root, split='val'):
    return DATASETS.build(dict(
        type='CocoPanopticSegDataset', data_root=root, ann_file=f'panoptic_{split}.json',
        img_suffix='.png', data_prefix=dict(img_path=f'img_dir/{split}', seg_map_path=f'panoptic/{split}'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadPanopticAnnotations'),
                  dict(type='PackPanopticSegInputs')]))


def test_dataset_metainfo_and_targets(shapes_root):
    dataset = panoptic_dataset(shapes_root)
    assert dataset.metainfo['classes'] == ('background', 'water', 'circle', 'rectangle', 'triangle', 'star')
    assert dataset.metainfo['thing_classes'] == ('circle', 'rectangle', 'triangle', 'star')
    sample = dataset[0]['data_samples']
    ids = load_panoptic_png(sample.seg_map_path)
    index_map = sample.gt_panoptic_seg.data[0].numpy()
    # Every non-crowd segment becomes one index whose pixels are exactly the segment's.
    segments = [s for s in sample.segments_info if not s.get('iscrowd', 0)]
    assert len(sample.panoptic_labels) == len(segments)
    for k, segment in enumerate(segments, start=1):
        assert np.array_equal(index_map == k, ids == segment['id'])
        assert sample.panoptic_labels[k - 1] == segment['label']
    # The semantic map agrees with the semantic annotation of the same image.
    semantic = np.array(Image.open(sample.seg_map_path.replace('panoptic', 'ann_dir')))
    assert np.array_equal(sample.gt_sem_seg.data[0].numpy(), semantic)
    assert sample.thing_labels == [2, 3, 4, 5]


def test_training_targets_are_instances(shapes_root):
    model = tiny_segmentor(dict(mode='panoptic'))
    data = model.data_preprocessor(pseudo_collate([panoptic_dataset(shapes_root, 'train')[i] for i in range(2)]), True)
    labels, masks = model.decode_head.segments_from_samples(data['data_samples'])
    repeated_class = False
    for sample, image_labels, image_masks in zip(data['data_samples'], labels, masks):
        assert image_labels.tolist() == sample.panoptic_labels
        assert image_masks.shape[-2:] == sample.gt_sem_seg.data.shape[-2:]
        # One mask per non-crowd segment of the JSON, disjoint: instances of a class stay apart.
        segments = [s for s in sample.segments_info if not s.get('iscrowd', 0)]
        assert image_labels.tolist() == [s['label'] for s in segments]
        assert int(image_masks.sum(0).max()) == 1
        repeated_class |= len(image_labels) > len(set(image_labels.tolist()))
    assert repeated_class  # the samples do exercise two instances of one class
    losses = model.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(sum(v for k, v in losses.items() if 'loss' in k))


def test_panoptic_prediction_and_pq_metric(shapes_root, tmp_path):
    model = tiny_segmentor(dict(mode='panoptic', object_mask_threshold=0.0, overlap_threshold=0.0)).eval()
    dataset = panoptic_dataset(shapes_root)
    batch = pseudo_collate([dataset[i] for i in range(2)])
    with torch.no_grad():
        results = model.test_step(batch)
    for result in results:
        seg = result.pred_panoptic_seg.data[0]
        assert seg.shape == result.ori_shape and seg.dtype == torch.int64
        ids = sorted(set(seg.unique().tolist()) - {0})
        assert ids == [s['id'] for s in result.pred_segments_info]
        for segment in result.pred_segments_info:
            assert segment['area'] == int((seg == segment['id']).sum())
            assert segment['isthing'] == (segment['category_id'] in (2, 3, 4, 5))
        assert result.pred_sem_seg.data.shape[-2:] == result.ori_shape
    metric = METRICS.build(dict(type='PanopticQualityMetric'))
    metric.dataset_meta = dataset.metainfo
    metric.process(batch, [r.to_dict() for r in results])
    report = metric.compute_metrics(metric.results)
    assert set(report) == {f'{k}{s}' for k in ('PQ', 'SQ', 'RQ') for s in ('', '_th', '_st')}
    # The same predictions scored by mmdet 3.3's PQ (panopticapi rules) from PNG files.
    pred_dir = tmp_path / 'pred'
    pred_dir.mkdir()
    annotation_set = []
    for image_id, (sample, result) in enumerate(zip(batch['data_samples'], results)):
        name = os.path.basename(sample.seg_map_path)
        Image.fromarray(id2rgb(result.pred_panoptic_seg.data[0].numpy())).save(pred_dir / name)
        gt_ids = load_panoptic_png(sample.seg_map_path)
        gt_segments = [dict(id=s['id'], category_id=s['category_id'], iscrowd=s.get('iscrowd', 0),
                            area=int((gt_ids == s['id']).sum())) for s in sample.segments_info]
        annotation_set.append((dict(image_id=image_id, file_name=name, segments_info=gt_segments),
                               dict(image_id=image_id, file_name=name,
                                    segments_info=result.pred_segments_info)))
    categories = {c['id']: dict(c) for c in CATEGORIES}
    theirs = pq_compute_single_core(0, annotation_set, os.path.dirname(batch['data_samples'][0].seg_map_path),
                                    str(pred_dir), categories)
    assert any(result.pred_segments_info for result in results)
    for suffix, isthing in (('', None), ('_th', True), ('_st', False)):
        expected, _ = theirs.pq_average(categories, isthing=isthing)
        for key in ('pq', 'sq', 'rq'):
            assert report[key.upper() + suffix] == pytest.approx(100 * expected[key], abs=1e-9)


def test_perfect_prediction_scores_100(shapes_root):
    # The ground truth itself, fed as a prediction, must score PQ = 100.
    dataset = panoptic_dataset(shapes_root)
    metric = METRICS.build(dict(type='PanopticQualityMetric'))
    metric.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        sample = dataset[i]['data_samples']
        ids = torch.from_numpy(load_panoptic_png(sample.seg_map_path))
        metric.process({}, [dict(sample.to_dict(), pred_panoptic_seg=dict(data=ids[None]),
                                 pred_segments_info=[dict(id=s['id'], category_id=s['label'])
                                                     for s in sample.segments_info])])
    assert metric.compute_metrics(metric.results)['PQ'] == 100.0


def test_semantic_mode_is_plain_encoder_decoder(shapes_root):
    model = tiny_segmentor(dict(mode='semantic')).eval()
    batch = pseudo_collate([panoptic_dataset(shapes_root)[0]])
    with torch.no_grad():
        result = model.test_step(batch)[0]
    assert 'pred_panoptic_seg' not in result and 'pred_sem_seg' in result
