"""tools/infer.py against mmseg's own inference routes (inference_model, MMSegInferencer) and the
dataset pipeline's test_step, on Shapes images of odd sizes and in grayscale / RGBA."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from cli_testing import PANOPTIC_CONFIG, SEMANTIC_CONFIG
from PIL import Image

import infer
from mmseg_maskformer.datasets.shapes import rgb2id
from checkpoint_testing import checkpoint_naming_fewer_classes


@pytest.fixture(scope='module')
def images(shapes_root, tmp_path_factory):
    """Val images: as they are, an odd-size crop, grayscale and RGBA versions."""
    folder = tmp_path_factory.mktemp('images')
    sources = sorted(glob.glob(osp.join(shapes_root, 'img_dir', 'val', '*.png')))
    rgb = np.asarray(Image.open(sources[0]).convert('RGB'))
    Image.fromarray(rgb).save(folder / 'a_plain.png')
    Image.fromarray(np.asarray(Image.open(sources[1]).convert('RGB'))[3:56, 1:62]).save(
        folder / 'b_odd.png')
    Image.fromarray(rgb).convert('L').save(folder / 'c_gray.png')
    alpha = np.full(rgb.shape[:2] + (1, ), 90, dtype=np.uint8)
    Image.fromarray(np.concatenate([rgb, alpha], -1), 'RGBA').save(folder / 'd_rgba.png')
    return str(folder)


def mmseg_labels(config, checkpoint, rgb):
    """``mmseg.apis.inference_model`` on the BGR array: the reference label map."""
    from mmengine.model import revert_sync_batchnorm
    from mmseg.apis import inference_model, init_model

    model = revert_sync_batchnorm(init_model(config, checkpoint, device='cpu'))
    return inference_model(model, np.ascontiguousarray(rgb[..., ::-1])).pred_sem_seg.data[0].numpy()


def test_semantic_outputs_equal_mmseg_inference_model(images, semantic_checkpoint, tmp_path):
    out = tmp_path / 'out'
    infer.main([SEMANTIC_CONFIG, semantic_checkpoint, images, '--out-dir', str(out),
                '--batch-size', '2'])
    plain = np.asarray(Image.open(osp.join(images, 'a_plain.png')))
    gray = np.asarray(Image.open(osp.join(images, 'c_gray.png')))
    odd = np.asarray(Image.open(osp.join(images, 'b_odd.png')))
    expected = {
        'a_plain': mmseg_labels(SEMANTIC_CONFIG, semantic_checkpoint, plain),
        'b_odd': mmseg_labels(SEMANTIC_CONFIG, semantic_checkpoint, odd),
        'c_gray': mmseg_labels(SEMANTIC_CONFIG, semantic_checkpoint,
                               np.repeat(gray[..., None], 3, -1)),
    }
    expected['d_rgba'] = expected['a_plain']  # alpha is dropped
    assert len(np.unique(expected['a_plain'])) > 1  # a comparison that can fail
    for name, reference in expected.items():
        labels = np.asarray(Image.open(out / 'labels' / f'{name}.png'))
        assert labels.dtype == np.uint8 and labels.shape == reference.shape, name
        np.testing.assert_array_equal(labels, reference, err_msg=name)
        overlay = Image.open(out / 'overlays' / f'{name}.png')
        assert overlay.mode == 'RGB'
        assert overlay.width > reference.shape[1] and overlay.height >= reference.shape[0]
    assert not (out / 'panoptic').exists()


def test_batching_does_not_change_results(images, semantic_checkpoint, tmp_path):
    infer.main([SEMANTIC_CONFIG, semantic_checkpoint, images, '--out-dir', str(tmp_path / 'b1')])
    infer.main([SEMANTIC_CONFIG, semantic_checkpoint, osp.join(images, '*.png'), '--out-dir',
                str(tmp_path / 'b4'), '--batch-size', '4'])
    for path in sorted((tmp_path / 'b1' / 'labels').glob('*.png')):
        batched = tmp_path / 'b4' / 'labels' / path.name
        np.testing.assert_array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(batched)))


def test_mmseg_inferencer_runs_our_model(images, semantic_checkpoint, tmp_path):
    from mmseg.apis import MMSegInferencer

    inferencer = MMSegInferencer(model=SEMANTIC_CONFIG, weights=semantic_checkpoint, device='cpu')
    paths = [osp.join(images, 'a_plain.png'), osp.join(images, 'b_odd.png')]
    predictions = inferencer(paths, return_datasamples=True)
    infer.main([SEMANTIC_CONFIG, semantic_checkpoint] + paths + ['--out-dir', str(tmp_path)])
    for path, sample in zip(paths, predictions):
        name = osp.splitext(osp.basename(path))[0]
        np.testing.assert_array_equal(sample.pred_sem_seg.data[0].numpy(),
                                      np.asarray(Image.open(tmp_path / 'labels' / f'{name}.png')))


def test_panoptic_outputs_equal_test_step_on_the_dataset(shapes_root, panoptic_checkpoint,
                                                         tmp_path):
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmseg.apis import init_model
    from mmseg.registry import DATASETS

    # Thresholds 0: random weights are not confident, and segments must exist to be compared.
    options = ['model.decode_head.test_cfg.object_mask_threshold=0.0',
               'model.decode_head.test_cfg.overlap_threshold=0.0']
    val_dir = osp.join(shapes_root, 'img_dir', 'val')
    out = tmp_path / 'out'
    infer.main([PANOPTIC_CONFIG, panoptic_checkpoint, val_dir, '--out-dir', str(out),
                '--cfg-options'] + options)

    cfg = Config.fromfile(PANOPTIC_CONFIG)
    model = revert_sync_batchnorm(init_model(cfg, panoptic_checkpoint, device='cpu',
                                             cfg_options=dict(
                                                 model=dict(decode_head=dict(test_cfg=dict(
                                                     object_mask_threshold=0.0,
                                                     overlap_threshold=0.0))))))
    dataset_cfg = cfg.test_dataloader.dataset
    dataset_cfg.data_root = shapes_root
    dataset = DATASETS.build(dataset_cfg)
    with open(out / 'panoptic.json') as f:
        content = json.load(f)
    annotations = {a['image_id']: a for a in content['annotations']}
    things = {c['id'] for c in content['categories'] if c['isthing']}
    assert [c['name'] for c in content['categories']] == list(dataset.metainfo['classes'])
    assert things == {2, 3, 4, 5}
    compared_segments = 0
    for index in range(len(dataset)):
        data = dataset[index]
        with torch.no_grad():
            result = model.test_step(dict(inputs=[data['inputs']],
                                          data_samples=[data['data_samples']]))[0]
        name = osp.splitext(osp.basename(result.img_path))[0]
        ids = rgb2id(np.asarray(Image.open(out / 'panoptic' / f'{name}.png')))
        np.testing.assert_array_equal(ids, result.pred_panoptic_seg.data[0].numpy())
        expected = {s['id']: s for s in result.pred_segments_info}
        for segment in annotations[name]['segments_info']:
            mask = ids == segment['id']
            assert segment['category_id'] == expected[segment['id']]['category_id']
            assert segment['isthing'] == (segment['category_id'] in things)
            assert segment['area'] == mask.sum()
            x, y, w, h = segment['bbox']
            assert mask[y:y + h, x:x + w].sum() == mask.sum()
            assert mask[y].any() and mask[y + h - 1].any() and mask[:, x].any()
            compared_segments += 1
        assert (out / 'panoptic_overlays' / f'{name}.png').exists()
        np.testing.assert_array_equal(np.asarray(Image.open(out / 'labels' / f'{name}.png')),
                                      result.pred_sem_seg.data[0].numpy())
    assert compared_segments > len(dataset), compared_segments


def test_inputs_directories_and_globs_are_expanded_in_order(images):
    names = [osp.basename(p) for p in infer.find_images([osp.join(images, 'c_*.png'), images])]
    assert names == ['c_gray.png', 'a_plain.png', 'b_odd.png', 'd_rgba.png']


def test_bad_inputs_are_named(tmp_path, images):
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        infer.find_images([str(tmp_path / 'missing.jpg')])
    with pytest.raises(FileNotFoundError, match='no image'):
        infer.find_images([str(tmp_path)])
    broken = tmp_path / 'broken.png'
    broken.write_text('not an image')
    with pytest.raises(ValueError, match='broken.png'):
        infer.read_rgb(str(broken))
    other = tmp_path / 'a_plain.jpg'
    Image.open(osp.join(images, 'a_plain.png')).convert('RGB').save(other)
    with pytest.raises(ValueError, match='same output files'):
        infer.find_images([osp.join(images, 'a_plain.png'), str(other)])


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100], [65535, 257 * 7]], dtype=np.uint16)
    path = str(tmp_path / 'deep.png')
    Image.fromarray(values).save(path)
    rgb = infer.read_rgb(path)
    np.testing.assert_array_equal(rgb[..., 0], [[0, 100], [255, 7]])
    assert rgb.shape == (2, 2, 3)


# --- class names and colours -------------------------------------------------------------------

MANY_CLASSES = 300  # more than 256, like ADE20K-Full's 847


def class_255_checkpoint(path, meta) -> str:
    """A Shapes-config model with MANY_CLASSES classes that predicts class 255 everywhere, saved
    with ``meta``."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    cfg = Config.fromfile(SEMANTIC_CONFIG)
    cfg.model.decode_head.num_classes = MANY_CLASSES
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    with torch.no_grad():
        model.decode_head.cls_embed.weight.zero_()
        model.decode_head.cls_embed.bias.fill_(-10.0)
        model.decode_head.cls_embed.bias[255] = 10.0
    torch.save(dict(state_dict=model.state_dict(), meta=meta), path)
    return str(path)


def run_many_classes(images, checkpoint, out):
    infer.main([SEMANTIC_CONFIG, checkpoint, osp.join(images, 'a_plain.png'), '--out-dir',
                str(out), '--cfg-options', f'model.decode_head.num_classes={MANY_CLASSES}'])
    labels = np.asarray(Image.open(out / 'labels' / 'a_plain.png'))
    image = np.asarray(Image.open(osp.join(images, 'a_plain.png')).convert('RGB'))
    overlay = np.asarray(Image.open(out / 'overlays' / 'a_plain.png'))[:image.shape[0],
                                                                       :image.shape[1]]
    return labels, image, overlay


def test_predicted_class_255_has_its_colour(images, tmp_path):
    """Predictions have no ignore value: class 255 of a model with more classes is drawn in its
    colour, not white."""
    palette = [[i % 256, (7 * i) % 256, 100] for i in range(MANY_CLASSES)]
    meta = dict(dataset_meta=dict(classes=tuple(f'name {i}' for i in range(MANY_CLASSES)),
                                  palette=palette))
    checkpoint = class_255_checkpoint(tmp_path / 'many.pth', meta)
    labels, image, overlay = run_many_classes(images, checkpoint, tmp_path / 'out')
    assert labels.dtype == np.uint16 and (labels == 255).all()
    colours = np.broadcast_to(np.array(palette[255], dtype=np.uint8), image.shape)
    np.testing.assert_array_equal(overlay, infer.blend(image, colours, 0.5))


def test_checkpoint_without_class_names_gets_one_per_class(images, tmp_path, capsys):
    """mmseg's init_model would name the 300 classes with Cityscapes' 19 (and the legend of class
    255 would fail): the classes are named 'class i', with mmseg's seeded colours."""
    checkpoint = class_255_checkpoint(tmp_path / 'nameless.pth', dict())
    labels, image, overlay = run_many_classes(images, checkpoint, tmp_path / 'out')
    assert "names no classes" in capsys.readouterr().err
    from mmseg_maskformer.converters import random_palette
    assert (labels == 255).all()
    colours = np.broadcast_to(np.array(random_palette(MANY_CLASSES)[255], dtype=np.uint8),
                              image.shape)
    np.testing.assert_array_equal(overlay, infer.blend(image, colours, 0.5))
    model = infer.load_model(SEMANTIC_CONFIG, checkpoint, 'cpu',
                             dict(model=dict(decode_head=dict(num_classes=MANY_CLASSES))))
    assert model.dataset_meta['classes'][255] == 'class 255'
    assert len(model.dataset_meta['classes']) == MANY_CLASSES


def test_checkpoint_naming_another_number_of_classes_is_refused(images, semantic_checkpoint,
                                                                tmp_path):
    path = checkpoint_naming_fewer_classes(semantic_checkpoint, str(tmp_path / 'five_names.pth'), 5)
    with pytest.raises(ValueError, match=r'five_names\.pth names 5 classes .* predicts 6 .*'
                                         r'tools/convert_checkpoint\.py'):
        infer.main([SEMANTIC_CONFIG, path, images, '--out-dir', str(tmp_path / 'out')])
    assert not (tmp_path / 'out').exists()


def test_trust_checkpoint_flag(images, semantic_checkpoint, tmp_path, monkeypatch):
    trusted = []
    monkeypatch.setattr(infer, 'trust_checkpoint', trusted.append)
    infer.main([SEMANTIC_CONFIG, semantic_checkpoint, osp.join(images, 'a_plain.png'),
                '--out-dir', str(tmp_path), '--trust-checkpoint'])
    assert trusted == [semantic_checkpoint]
    assert not infer.parse_args([SEMANTIC_CONFIG, semantic_checkpoint, 'x']).trust_checkpoint


def test_mmseg_inference_model_runs_panoptic_configs(shapes_root, panoptic_checkpoint, tmp_path):
    # mmseg's inference_model removes only pipeline steps named LoadAnnotations: the panoptic
    # loader must let a bare image through. Its panoptic map equals tools/infer.py's.
    from mmengine.model import revert_sync_batchnorm
    from mmseg.apis import inference_model, init_model

    thresholds = dict(object_mask_threshold=0.0, overlap_threshold=0.0)
    image = sorted(glob.glob(osp.join(shapes_root, 'img_dir', 'val', '*.png')))[0]
    model = revert_sync_batchnorm(init_model(
        PANOPTIC_CONFIG, panoptic_checkpoint, device='cpu',
        cfg_options=dict(model=dict(decode_head=dict(test_cfg=thresholds)))))
    result = inference_model(model, image)
    infer.main([PANOPTIC_CONFIG, panoptic_checkpoint, image, '--out-dir', str(tmp_path),
                '--cfg-options'] +
               [f'model.decode_head.test_cfg.{key}=0.0' for key in thresholds])
    name = osp.splitext(osp.basename(image))[0]
    ids = rgb2id(np.asarray(Image.open(tmp_path / 'panoptic' / f'{name}.png')))
    assert len(np.unique(ids)) > 1
    np.testing.assert_array_equal(ids, result.pred_panoptic_seg.data[0].numpy())
