"""MaskFormerTTAModel: the official multi-scale + flip merge (mean of semantic scores)."""
import os

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.structures import PixelData
from mmseg.models.segmentors import SegTTAModel
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from PIL import Image

import mmseg_maskformer.datasets  # noqa: F401  (registers the transforms)
from mmseg_maskformer.models import MaskFormerTTAModel

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES = os.path.join(REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-128x128.py')
PANOPTIC = os.path.join(REPO,
                        'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-panoptic-128x128.py')


class MergeOnly(torch.nn.Module):
    """Stands in for a two-class segmentor where only ``merge_preds`` runs."""
    out_channels = 2

    def test_step(self, data):
        raise AssertionError('merge_preds must not run the model')


def sample_with_scores(scores):
    sample = SegDataSample(metainfo=dict(img_path='a.png', ori_shape=scores.shape[1:]))
    sample.seg_logits = PixelData(data=scores)
    sample.gt_sem_seg = PixelData(data=torch.zeros((1,) + scores.shape[1:], dtype=torch.long))
    return sample


def test_merge_is_the_mean_of_the_scores_not_mmseg_softmax_merge():
    # Three views of one 1×1 image, two classes, scores as MaskFormer gives them (probabilities
    # Σ_q p_q(c)·σ(m_q)): one view sure of class 0, two views mildly for class 1.
    views = [torch.tensor([1.0, 0.0]), torch.tensor([0.0, 0.48]), torch.tensor([0.0, 0.48])]
    samples = [sample_with_scores(v[:, None, None]) for v in views]
    merged, = MaskFormerTTAModel(module=MergeOnly()).merge_preds([samples])
    # Official merge (mask_former/test_time_augmentation.py): sum the views, divide by their number.
    expected = (views[0] + views[1] + views[2]) / 3
    torch.testing.assert_close(merged.seg_logits.data[:, 0, 0], expected, rtol=0, atol=0)
    assert merged.pred_sem_seg.data.shape == (1, 1, 1)
    assert merged.pred_sem_seg.data.item() == 0  # 0.333 > 0.32
    assert torch.equal(merged.gt_sem_seg.data, samples[0].gt_sem_seg.data)
    assert merged.img_path == 'a.png'

    # mmseg's SegTTAModel averages softmax(scores) per view: softmax over [1, 0] gives class 0
    # only 0.731, softmax over [0, 0.48] gives class 1 0.618 twice, so class 1 wins.
    softmax_merged, = SegTTAModel(module=MergeOnly()).merge_preds([samples])
    assert softmax_merged.pred_sem_seg.data.item() == 1
    softmax_mean = torch.stack([v.softmax(0) for v in views]).mean(0)
    assert softmax_mean[1] > softmax_mean[0]


def test_merge_rejects_views_of_different_sizes():
    samples = [sample_with_scores(torch.rand(3, 4, 5)), sample_with_scores(torch.rand(3, 4, 6))]
    with pytest.raises(ValueError, match='one shape'):
        MaskFormerTTAModel(module=MergeOnly()).merge_preds([samples])


@pytest.fixture(scope='module')
def model():
    cfg = Config.fromfile(SHAPES)
    torch.manual_seed(0)
    segmentor = MODELS.build(cfg.model)
    segmentor.init_weights()
    return segmentor.eval()


@pytest.fixture(scope='module')
def image_files(tmp_path_factory):
    """A 72×100 image, its mirror image and a label map, as files the pipelines load."""
    root = tmp_path_factory.mktemp('tta')
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (72, 100, 3), dtype=np.uint8)
    paths = {}
    for name, array in (('image', image), ('mirror', image[:, ::-1])):
        paths[name] = str(root / f'{name}.png')
        Image.fromarray(np.ascontiguousarray(array)).save(paths[name])
    paths['label'] = str(root / 'label.png')
    Image.fromarray(rng.integers(0, 6, (72, 100), dtype=np.uint8)).save(paths['label'])
    return paths


def load(pipeline, img_path, seg_map_path):
    return pseudo_collate([Compose(pipeline)(dict(
        img_path=img_path, seg_map_path=seg_map_path, reduce_zero_label=False, seg_fields=[]))])


def plain_pipeline(scale):
    return [dict(type='LoadImageFromFile'),
            dict(type='ResizeShortestEdge', scale=scale, max_size=1000),
            dict(type='LoadAnnotations'), dict(type='PackSegInputs')]


def tta_pipeline(scales, flips):
    return [dict(type='LoadImageFromFile'),
            dict(type='TestTimeAug', transforms=[
                [dict(type='ResizeShortestEdge', scale=s, max_size=1000) for s in scales],
                [dict(type='RandomFlip', prob=float(flip), direction='horizontal')
                 for flip in flips],
                [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]])]


def test_one_scale_without_flip_equals_plain_testing(model, image_files):
    tta = MaskFormerTTAModel(module=model)
    with torch.no_grad():
        plain, = model.test_step(load(plain_pipeline(96), image_files['image'],
                                      image_files['label']))
        merged, = tta.test_step(load(tta_pipeline([96], [False]), image_files['image'],
                                     image_files['label']))
    assert plain.seg_logits.data.shape == (6, 72, 100)
    torch.testing.assert_close(merged.seg_logits.data, plain.seg_logits.data, rtol=0, atol=0)
    assert torch.equal(merged.pred_sem_seg.data, plain.pred_sem_seg.data)
    assert torch.equal(merged.gt_sem_seg.data, plain.gt_sem_seg.data)


def test_flipped_view_scores_are_unflipped_and_views_averaged(model, image_files):
    tta = MaskFormerTTAModel(module=model)
    # Scale 72 is the image's own shortest edge: that view is not resampled, so its flipped
    # version is exactly the mirror image.
    data = load(tta_pipeline([72, 96], [False, True]), image_files['image'], image_files['label'])
    with torch.no_grad():
        views = [model.test_step({key: value[i] for key, value in data.items()})[0]
                 for i in range(4)]
        merged, = tta.test_step(data)
        mirror, = model.test_step(load(plain_pipeline(72), image_files['mirror'],
                                       image_files['label']))
    assert [view.flip for view in views] == [False, True, False, True]
    # The network saw the mirror image in the flipped view; its scores come back un-flipped.
    torch.testing.assert_close(views[1].seg_logits.data, mirror.seg_logits.data.flip(-1),
                               rtol=0, atol=0)
    assert not torch.allclose(views[0].seg_logits.data, views[1].seg_logits.data)
    mean = torch.stack([view.seg_logits.data for view in views]).mean(0)
    torch.testing.assert_close(merged.seg_logits.data, mean, rtol=0, atol=0)
    assert torch.equal(merged.pred_sem_seg.data, mean.argmax(0, keepdim=True))


def test_panoptic_model_is_refused():
    cfg = Config.fromfile(PANOPTIC)
    with pytest.raises(NotImplementedError, match='panoptic test-time augmentation'):
        MaskFormerTTAModel(module=MODELS.build(cfg.model))
