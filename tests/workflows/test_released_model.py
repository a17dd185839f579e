"""README "Use a released model", run as a user runs it, on tiny data in each dataset's layout.

For three zoo configs (ADE20K-150, ADE20K-Full-847, COCO panoptic-133) the test

1. writes an official-format ``.pkl`` (facebookresearch/MaskFormer release layout) of a random
   tiny MaskFormer (``tests/converters/official_testing.py``: a transformers MaskFormer mapped
   back to the official names; for COCO panoptic plus the official encoder pixel decoder), and
   a config that inherits the real zoo config (``_base_``), keeping its dataset, pipelines,
   evaluator, ``num_classes`` and ``test_cfg``, and only shrinking the model (ResNet-50 layout
   with stem 16 / base 8, a 32-wide head) and the pipelines' sizes (~64 px, the scales of
   every resize and crop multiplied by one factor) and pointing ``data_root`` at tiny data;
2. writes two images per split in the dataset's own layout (ADE20K ``images/`` +
   ``annotations/`` with ``reduce_zero_label``; ADE20K-Full ``images_detectron2/`` with 16-bit
   ``.tif`` labels; COCO ``val2017/`` + ``annotations/panoptic_val2017{.json,/}`` with the 133
   COCO categories under their COCO ids), images of different, non-square sizes;
3. ``tools/convert_checkpoint.py PKL checkpoints/ --config CONFIG --name NAME``: the ``.pth``
   names the dataset's classes (and ``thing_classes``), which ``mmseg.apis.init_model`` reads;
4. ground truth: half of each image is labelled with the converted model's own prediction
   (found here with the model's ``test_step``), the rest with fixed classes and ignored pixels,
   so that the mIoU is neither 0 nor 100 and a wrong label map or metric shows;
5. ``tools/test.py CONFIG PTH --out DIR``: the printed mIoU (and PQ), the label maps (and
   COCO-panoptic files) it writes;
6. ``tools/infer.py CONFIG PTH IMAGES_DIR --out-dir DIR``: its label maps (16-bit for 847
   classes) are the model's predictions at each image's size and give the printed mIoU, overlays
   are written; panoptic PNGs and segments equal test.py's;
7. ``tools/train.py CONFIG --cfg-options load_from=PTH`` for two iterations at learning rate 0:
   the saved weights are the converted ones and the validation at the end prints test.py's mIoU;
8. ADE20K only: ``tools/export_onnx.py CONFIG PTH --out model.onnx --shape H W --check``: the
   printed max difference is small and onnxruntime's scores, cropped and resized as mmseg does,
   give infer.py's label map;
9. test.py's label maps equal infer.py's pixel for pixel (test.py writes ADE20K's 1..150,
   mmseg's convention for ``reduce_zero_label``; infer.py the class index), and the mIoU
   recomputed from them and the ground truth is the printed one (ADE20K-Full: 16-bit maps,
   classes above 255 included).

Tools run in-process (their ``main(argv)``).

Not run here: downloading the released ``model_final_d8dbeb.pkl`` (no network; the converter's
agreement with the official network is tested in ``tests/converters/``); ``tools/test.py
--tta`` (multi-scale + flip, tested in ``tests/integration/test_train_test_cli.py``); a full
fine-tuning run (two iterations show that ``load_from`` loads the converted weights).
"""
import contextlib
import io
import json
import os
import os.path as osp
import pprint
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cli_testing import REPO, iou_of_label_maps, run_in_process

sys.path.insert(0, osp.join(REPO, 'tests', 'converters'))
from hf_testing import tiny_hf_model  # noqa: E402
from official_testing import (add_official_encoder, official_state_from_hf,  # noqa: E402
                              resnet_backbone, write_official_pkl, zoo_like_cfg)

from mmseg_maskformer.datasets.shapes import id2rgb, rgb2id  # noqa: E402

ZOO = osp.join(REPO, 'configs', 'maskformer')
# The ResNet-50 layout at 1/8 width: stage outputs 32, 64, 128, 256 (those of tiny_hf_model).
BACKBONE = resnet_backbone(depth=50, stem_channels=16, base_channels=8)
STAGE_CHANNELS = [32, 64, 128, 256]
# Test images are resized to this shortest edge (instead of 512 / 800).
TEST_EDGE = 64
SIZE_KEYS = ('scale', 'scales', 'max_size', 'crop_size', 'size_range')
# COCO 2017 panoptic category ids, in the order of panoptic_val2017.json: 80 things, 53 stuff.
COCO_THING_IDS = [i for i in range(1, 91)
                  if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
COCO_STUFF_IDS = [92, 93, 95, 100, 107, 109, 112, 118, 119, 122, 125, 128, 130, 133, 138, 141, 144,
                  145, 147, 148, 149, 151, 154, 155, 156, 159, 161, 166, 168, 171, 175, 176, 177,
                  178, 180, 181, 184, 185, 186, 187, 188, 189, 190, 191, 192, 193, 194, 195, 196,
                  197, 198, 199, 200]

CASES = {
    'ade20k': dict(
        config='maskformer_r50-d32_8xb2-160k_ade20k-512x512.py', name='maskformer_r50_ade20k',
        num_classes=150, ignore=255, sizes=[(60, 80), (75, 50)]),
    'ade20k-full': dict(
        config='maskformer_r50-d32_8xb2-200k_ade20k-full-512x512.py',
        name='maskformer_r50_ade20k_full', num_classes=847, ignore=65535,
        sizes=[(56, 90), (70, 52)]),
    'coco-panoptic': dict(
        config='maskformer_r50-d32_8xb8-554k_coco-panoptic-800x1333.py',
        name='maskformer_r50_coco_panoptic', num_classes=133, ignore=255,
        sizes=[(60, 80), (90, 68)]),
}


# --- the released file and the config -------------------------------------------------------

def official_pkl(case, path):
    """An official-format .pkl of a random tiny MaskFormer with the dataset's classes."""
    spec = CASES[case]
    hf_model = tiny_hf_model(seed=0, num_labels=spec['num_classes'])
    state = official_state_from_hf(hf_model)
    pixel_decoder = None
    if case == 'coco-panoptic':
        # The official panoptic R50: a 6-layer (here 2-layer) transformer encoder on res5 whose
        # output (d_model wide: no predictor input_proj) feeds the FPN and the decoder.
        del state['sem_seg_head.predictor.input_proj.weight']
        del state['sem_seg_head.predictor.input_proj.bias']
        add_official_encoder(state, STAGE_CHANNELS[-1], 32, 2, 48, np.random.default_rng(0))
        pixel_decoder = dict(type='TransformerEncoderPixelDecoder', feat_channels=32,
                             num_encoder_layers=2, num_heads=4, feedforward_channels=48)
    # A freshly initialised head predicts one class everywhere: its queries hardly differ and its
    # masks are flat. Noise on the pixel decoder (masks varying over the image), on the query
    # and class embeddings (distinct queries and classes) and, for the panoptic model, whose
    # encoder evens out the decoder's memory, on the transformer decoder too, makes several
    # classes per image and panoptic segments appear, so that comparisons of maps can fail.
    rng = np.random.default_rng(1)
    for key, value in state.items():
        if not key.startswith('sem_seg_head.') or 'norm' in key:
            continue
        if key.endswith(('query_embed.weight', 'class_embed.weight', 'class_embed.bias')):
            noise = 3
        elif key.startswith('sem_seg_head.predictor.'):
            noise = 0.3 if case == 'coco-panoptic' else 0
        else:
            noise = 0.3
        state[key] = (value + noise * rng.standard_normal(value.shape)).astype(np.float32)
    write_official_pkl(path, state)
    return hf_model.config, pixel_decoder


def scaled_sizes(step, factor):
    """A pipeline step with every size (resize scales, max sizes, crops) multiplied by
    ``factor``; nested transforms (RandomChoice, TestTimeAug) too."""
    if isinstance(step, dict):
        out = {}
        for key, value in step.items():
            if key in SIZE_KEYS and key != 'max_size' or key == 'max_size' and value < 1 << 20:
                value = (type(value)(max(8, round(v * factor)) for v in value)
                         if isinstance(value, (list, tuple)) else max(8, round(value * factor)))
            else:
                value = scaled_sizes(value, factor)
            out[key] = value
        return out
    if isinstance(step, (list, tuple)):
        return type(step)(scaled_sizes(item, factor) for item in step)
    return step


def write_tiny_config(case, path, data_root, hf_config, pixel_decoder):
    """A config inheriting the zoo config: same dataset, evaluator, num_classes, test_cfg and
    pipelines (sizes scaled to ~64 px); a tiny model; data_root on the tiny data."""
    from mmengine.config import Config
    zoo_path = osp.join(ZOO, CASES[case]['config'])
    zoo = Config.fromfile(zoo_path)
    test_resize = [s for s in zoo.test_pipeline if s['type'] == 'ResizeShortestEdge'][0]
    factor = TEST_EDGE / test_resize['scale']
    tiny = zoo_like_cfg(hf_config, BACKBONE, STAGE_CHANNELS, pixel_decoder)['decode_head']
    assert tiny['num_classes'] == zoo.model.decode_head.num_classes == CASES[case]['num_classes']
    head = {key: tiny[key] for key in ('in_channels', 'num_queries', 'mask_channels',
                                       'transformer_decoder')}
    head['pixel_decoder'] = {key: value for key, value in tiny['pixel_decoder'].items()
                             if key not in ('type', 'norm_cfg', 'act_cfg')}
    model = dict(backbone=dict(BACKBONE, init_cfg=None), decode_head=head)
    if zoo.model.data_preprocessor.get('size'):
        model['data_preprocessor'] = dict(size=tuple(
            round(s * factor) for s in zoo.model.data_preprocessor['size']))
    train_pipeline = scaled_sizes(zoo.train_pipeline, factor)
    test_pipeline = scaled_sizes(zoo.test_pipeline, factor)
    loader = dict(num_workers=0, persistent_workers=False,
                  dataset=dict(data_root=str(data_root), pipeline=test_pipeline))
    settings = dict(
        model=model, train_pipeline=train_pipeline, test_pipeline=test_pipeline,
        train_dataloader=dict(batch_size=2, num_workers=0, persistent_workers=False,
                              dataset=dict(data_root=str(data_root), pipeline=train_pipeline)),
        val_dataloader=loader, test_dataloader=loader)
    with open(path, 'w') as f:
        f.write(f'_base_ = [{zoo_path!r}]\n')
        for key, value in settings.items():
            f.write(f'{key} = {pprint.pformat(value, width=100, sort_dicts=False)}\n')
    return str(path)


# --- tiny data in each dataset's layout ----------------------------------------------------------

def picture(rng, height, width):
    """A photo-like RGB image: smooth colour fields plus a little noise."""
    coarse = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    smooth = np.kron(coarse, np.ones((8, 8, 1)))[:height, :width]
    noisy = smooth + rng.normal(0, 12, (height, width, 3))
    return np.clip(noisy, 0, 255).astype(np.uint8)


def image_paths(case, data_root, split='validation'):
    folder = {'ade20k': f'images/{split}', 'ade20k-full': f'images_detectron2/{split}',
              'coco-panoptic': 'val2017' if split == 'validation' else 'train2017'}[case]
    names = {'ade20k': 'ADE_{}_0000000{}.jpg', 'ade20k-full': 'ADE_{}_0000000{}.jpg',
             'coco-panoptic': '00000000{}{}.jpg'}[case]
    tag = {'validation': 'val', 'training': 'train'}[split]
    if case == 'coco-panoptic':
        tag = {'validation': '01', 'training': '02'}[split]
    return [osp.join(data_root, folder, names.format(tag, i + 1)) for i in range(2)]


def write_images(case, data_root):
    """JPEGs of the sizes of ``CASES[case]``; the training split repeats the validation images."""
    rng = np.random.default_rng(1)
    pictures = [picture(rng, height, width) for height, width in CASES[case]['sizes']]
    for split in ('training', 'validation'):
        for path, image in zip(image_paths(case, data_root, split), pictures):
            os.makedirs(osp.dirname(path), exist_ok=True)
            Image.fromarray(image).save(path, quality=92)


def coco_categories():
    from mmseg_maskformer.converters.panoptic_categories import released_panoptic_categories
    names = released_panoptic_categories('panoptic_val2017.json')
    ids = COCO_THING_IDS + COCO_STUFF_IDS
    assert len(COCO_THING_IDS) == 80 and len(COCO_STUFF_IDS) == 53 == len(names) - 80
    assert all(c['isthing'] == (i < 80) for i, c in enumerate(names))
    return [dict(id=cid, name=c['name'], isthing=c['isthing'], supercategory='s')
            for cid, c in zip(ids, names)]


def coco_json_path(data_root, split):
    name = {'validation': 'val', 'training': 'train'}[split]
    return osp.join(data_root, 'annotations', f'panoptic_{name}2017.json')


def write_coco_categories(data_root):
    """The annotation files with their categories (the classes the converter reads)."""
    os.makedirs(osp.join(data_root, 'annotations'), exist_ok=True)
    for split in ('training', 'validation'):
        with open(coco_json_path(data_root, split), 'w') as f:
            json.dump(dict(images=[], annotations=[], categories=coco_categories()), f)


def pseudo_ground_truth(case, prediction):
    """(H, W) class indices (the dataset's ignore value where unlabelled): ``prediction`` on the
    left half, fixed classes and an unlabelled band on the right."""
    spec = CASES[case]
    labels = prediction.astype(np.int64).copy()
    height, width = labels.shape
    right = slice(width // 2, None)
    labels[:, right] = {'ade20k': 7, 'ade20k-full': 846, 'coco-panoptic': 90}[case]
    labels[height // 3: 2 * height // 3, right] = {'ade20k': 12, 'ade20k-full': 300,
                                                   'coco-panoptic': 0}[case]
    labels[2 * height // 3:, right] = spec['ignore']
    return labels


def annotation_path(case, data_root, image_path, split):
    stem = osp.splitext(osp.basename(image_path))[0]
    if case == 'ade20k':
        return osp.join(data_root, 'annotations', split, f'{stem}.png')
    if case == 'ade20k-full':
        return osp.join(data_root, 'annotations_detectron2', split, f'{stem}.tif')
    name = {'validation': 'val', 'training': 'train'}[split]
    return osp.join(data_root, 'annotations', f'panoptic_{name}2017', f'{stem}.png')


def write_annotations(case, data_root, labels_list):
    """Ground truth in the dataset's format, ``labels_list[i]`` (class indices) for image i of
    each split: ADE20K PNGs (0 = other, class k as k + 1), ADE20K-Full 16-bit TIFFs, or COCO
    panoptic PNGs + JSON (one segment per class present, COCO category ids, void where
    unlabelled)."""
    categories = coco_categories() if case == 'coco-panoptic' else None
    for split in ('training', 'validation'):
        images, annotations = [], []
        for index, image_path in enumerate(image_paths(case, data_root, split)):
            labels = labels_list[index]
            path = annotation_path(case, data_root, image_path, split)
            os.makedirs(osp.dirname(path), exist_ok=True)
            if case == 'ade20k':
                Image.fromarray(np.where(labels == 255, 0, labels + 1).astype(np.uint8)).save(path)
            elif case == 'ade20k-full':
                Image.fromarray(labels.astype(np.uint16)).save(path)
            else:
                ids = np.zeros(labels.shape, dtype=np.int64)
                segments = []
                for k, label in enumerate(np.unique(labels[labels != 255]).tolist()):
                    segment_id = 0x010203 * (k + 1) + index  # ids using R, G and B
                    mask = labels == label
                    ids[mask] = segment_id
                    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
                    segments.append(dict(
                        id=segment_id, category_id=categories[label]['id'], iscrowd=0,
                        area=int(mask.sum()), bbox=[int(cols[0]), int(rows[0]),
                                                    int(cols[-1] - cols[0] + 1),
                                                    int(rows[-1] - rows[0] + 1)]))
                Image.fromarray(id2rgb(ids)).save(path)
                height, width = labels.shape
                images.append(dict(id=index + 1, file_name=osp.basename(image_path),
                                   height=height, width=width))
                annotations.append(dict(image_id=index + 1, file_name=osp.basename(path),
                                        segments_info=segments))
        if case == 'coco-panoptic':
            with open(coco_json_path(data_root, split), 'w') as f:
                json.dump(dict(images=images, annotations=annotations, categories=categories), f)


def model_predictions(config, checkpoint, paths):
    """{stem: label map} of the model's ``test_step`` on the config's test pipeline (without its
    annotation loading): the predictions the pseudo ground truth is made of."""
    from mmengine.dataset import Compose
    from mmseg.apis import init_model
    model = init_model(config, checkpoint, device='cpu')
    steps = [s for s in model.cfg.test_pipeline if not s['type'].endswith('Annotations')]
    pipeline = Compose(steps)
    predictions = {}
    for path in paths:
        packed = pipeline(dict(img_path=path))
        # thing_labels: panoptic models want them; only the semantic map is used here
        packed['data_samples'].set_metainfo(dict(thing_labels=list(range(80))))
        with torch.no_grad():
            sample = model.test_step(dict(inputs=[packed['inputs']],
                                          data_samples=[packed['data_samples']]))[0]
        predictions[osp.splitext(osp.basename(path))[0]] = sample.pred_sem_seg.data[0].numpy()
    return predictions


def ground_truth_labels(case, data_root, image_path):
    """The class indices of an image's annotation as the metric sees them (ignore value where
    unlabelled)."""
    path = annotation_path(case, data_root, image_path, 'validation')
    stored = np.array(Image.open(path))
    if case == 'ade20k':  # reduce_zero_label
        return np.where(stored == 0, 255, stored.astype(np.int64) - 1)
    if case == 'ade20k-full':
        return stored.astype(np.int64)
    ids = rgb2id(stored)
    with open(coco_json_path(data_root, 'validation')) as f:
        content = json.load(f)
    label_of = {c['id']: i for i, c in enumerate(content['categories'])}
    annotation = [a for a in content['annotations']
                  if a['file_name'] == osp.basename(path)][0]
    labels = np.full(ids.shape, 255, dtype=np.int64)
    for segment in annotation['segments_info']:
        labels[ids == segment['id']] = label_of[segment['category_id']]
    return labels


# --- checks --------------------------------------------------------------------------------------

def miou(pairs, num_classes, ignore):
    return np.nanmean(iou_of_label_maps(pairs, num_classes, ignore)[1])


def printed(key, out):
    """The value of ``key`` on tools/test.py's last line (``aAcc: .. mIoU: .. ...``)."""
    match = re.search(rf'(?:^|\s){re.escape(key)}: ([0-9.]+)', out.strip().splitlines()[-1])
    assert match, (key, out[-2000:])
    return float(match.group(1))


@contextlib.contextmanager
def captured():
    """stdout and stderr of an in-process tool into a StringIO (mmengine's logger writes to the
    stream current when it is created)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        yield buffer


def run_tool(tool, argv):
    """``tools/{tool}.py ARGV`` in this process: its return value and what it printed."""
    with captured() as buffer:
        result = run_in_process(tool, argv)
    return result, buffer.getvalue()


def parameters(state):
    return {k: v for k, v in state.items() if not k.endswith('num_batches_tracked')}


@pytest.mark.parametrize('case', list(CASES))
def test_use_a_released_model(case, tmp_path, monkeypatch):
    from mmseg.apis import init_model

    spec = CASES[case]
    num_classes = spec['num_classes']
    panoptic = case == 'coco-panoptic'
    # 1., 2. the released file, the config and the data
    data_root = tmp_path / 'data'
    write_images(case, str(data_root))
    if panoptic:
        write_coco_categories(str(data_root))
    hf_config, pixel_decoder = official_pkl(case, tmp_path / 'model_final_abc123.pkl')
    config = write_tiny_config(case, tmp_path / f'{spec["name"]}.py', data_root, hf_config,
                               pixel_decoder)
    monkeypatch.chdir(tmp_path)  # the README's relative paths: checkpoints/, work_dirs/

    # 3. tools/convert_checkpoint.py model_final_*.pkl checkpoints/ --config CONFIG --name NAME
    _, out = run_tool('convert_checkpoint', ['model_final_abc123.pkl', 'checkpoints/', '--config',
                                             config, '--name', spec['name']])
    checkpoint = str(tmp_path / 'checkpoints' / f'{spec["name"]}.pth')
    assert osp.isfile(checkpoint) and checkpoint.endswith(out.split('checkpoint: ')[-1].strip())
    meta = torch.load(checkpoint, weights_only=True)['meta']['dataset_meta']
    if case == 'ade20k':
        from mmseg.datasets import ADE20KDataset
        expected_classes = tuple(ADE20KDataset.METAINFO['classes'])
    elif case == 'ade20k-full':
        from mmseg_maskformer.datasets import ADE20K_FULL_CLASSES
        expected_classes = tuple(ADE20K_FULL_CLASSES)
    else:
        expected_classes = tuple(c['name'] for c in coco_categories())
        assert tuple(meta['thing_classes']) == expected_classes[:80]
    assert len(expected_classes) == num_classes
    assert tuple(meta['classes']) == expected_classes
    assert len(meta['palette']) == num_classes
    assert tuple(init_model(config, checkpoint, device='cpu').dataset_meta['classes']) == \
        expected_classes

    # 4. ground truth: half the model's prediction, half fixed classes and ignored pixels
    val_images = image_paths(case, str(data_root))
    predictions = model_predictions(config, checkpoint, val_images)
    assert sum(len(np.unique(p)) for p in predictions.values()) > 2  # maps that can differ
    write_annotations(case, str(data_root), [pseudo_ground_truth(case, p)
                                             for p in predictions.values()])

    # 5. tools/test.py CONFIG PTH --out DIR
    metrics, out = run_tool('test', [config, checkpoint, '--out', 'work_dirs/test_out',
                                     '--work-dir', 'work_dirs/test'])
    test_out = tmp_path / 'work_dirs' / 'test_out'
    stems = [osp.splitext(osp.basename(p))[0] for p in val_images]
    ground_truth = {s: ground_truth_labels(case, str(data_root), p)
                    for s, p in zip(stems, val_images)}
    printed_miou = printed('mIoU', out)
    assert printed_miou == pytest.approx(metrics['mIoU'], abs=0.006)
    assert 5 < printed_miou < 95  # the ground truth is half the prediction
    assert sorted(p.name for p in test_out.glob('*.png')) == sorted(f'{s}.png' for s in stems)
    if panoptic:
        for key in ('PQ', 'PQ_th', 'PQ_st', 'SQ', 'RQ'):
            printed(key, out)
        with open(test_out / 'panoptic.json') as f:
            test_panoptic = json.load(f)
        assert [c['name'] for c in test_panoptic['categories']] == list(expected_classes)
        assert [c['isthing'] for c in test_panoptic['categories']] == [1] * 80 + [0] * 53
        assert sorted(a['file_name'] for a in test_panoptic['annotations']) == \
            sorted(f'{s}.png' for s in stems)
        assert sum(len(a['segments_info']) for a in test_panoptic['annotations']) > 0

    # 6. tools/infer.py CONFIG PTH my_photos/ --out-dir DIR
    images_dir = osp.dirname(val_images[0])
    _, out = run_tool('infer', [config, checkpoint, images_dir, '--out-dir', 'work_dirs/pictures'])
    pictures = tmp_path / 'work_dirs' / 'pictures'
    assert '2 images segmented' in out
    infer_maps = {}
    for stem, image_path in zip(stems, val_images):
        written = Image.open(pictures / 'labels' / f'{stem}.png')
        infer_maps[stem] = np.array(written).astype(np.int64)
        height, width = np.array(Image.open(image_path)).shape[:2]
        assert infer_maps[stem].shape == (height, width)
        if num_classes > 256:
            assert written.mode in ('I;16', 'I') and infer_maps[stem].max() >= 256, written.mode
        np.testing.assert_array_equal(infer_maps[stem], predictions[stem], err_msg=stem)
        overlay = Image.open(pictures / 'overlays' / f'{stem}.png')
        assert overlay.mode == 'RGB' and overlay.height >= height and overlay.width > width
    assert printed_miou == pytest.approx(
        miou([(infer_maps[s], ground_truth[s]) for s in stems], num_classes, spec['ignore']),
        abs=0.006)
    if panoptic:
        with open(pictures / 'panoptic.json') as f:
            infer_panoptic = json.load(f)
        assert infer_panoptic['categories'] == test_panoptic['categories']
        by_name = {a['file_name']: a for a in test_panoptic['annotations']}
        assert sorted(by_name) == sorted(a['file_name'] for a in infer_panoptic['annotations'])
        for annotation in infer_panoptic['annotations']:
            name = annotation['file_name']
            assert annotation['segments_info'] == by_name[name]['segments_info'], name
            np.testing.assert_array_equal(
                np.array(Image.open(pictures / 'panoptic' / name)),
                np.array(Image.open(test_out / 'panoptic' / name)), err_msg=name)
            assert (pictures / 'panoptic_overlays' / name).is_file()

    # 7. tools/train.py CONFIG --cfg-options load_from=PTH (two steps at learning rate 0)
    _, out = run_tool('train', [config, '--work-dir', 'work_dirs/finetune', '--cfg-options',
                              f'load_from={checkpoint}', 'optim_wrapper.optimizer.lr=0.0',
                              'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                              'default_hooks.checkpoint.interval=2',
                              'default_hooks.logger.interval=1'])
    assert 'Load checkpoint from' in out
    converted = parameters(torch.load(checkpoint, weights_only=True)['state_dict'])
    trained = parameters(torch.load(tmp_path / 'work_dirs' / 'finetune' / 'iter_2.pth',
                                    weights_only=True)['state_dict'])
    assert trained.keys() == converted.keys()
    changed = [k for k in converted if not torch.equal(trained[k], converted[k])]
    assert not changed, changed[:5]
    val_miou = re.findall(r'Iter\(val\).*?mIoU: ([0-9.]+)', out)
    assert val_miou and float(val_miou[-1]) == pytest.approx(printed_miou, abs=0.006), out[-2000:]

    # 8. tools/export_onnx.py CONFIG PTH --out model.onnx --shape H W --check
    if case == 'ade20k':
        check_onnx_export(config, checkpoint, val_images[0], infer_maps[stems[0]], tmp_path)

    # 9. the label maps of tools/test.py --out: infer.py's, and the printed mIoU's
    test_maps = {s: np.array(Image.open(test_out / f'{s}.png')).astype(np.int64) for s in stems}
    if case == 'ade20k':
        # mmseg's IoUMetric writes ADE20K's own label values: class k as k + 1 (reduce_zero_label)
        assert min(m.min() for m in test_maps.values()) >= 1
        test_maps = {s: m - 1 for s, m in test_maps.items()}
    for stem in stems:
        np.testing.assert_array_equal(test_maps[stem], infer_maps[stem], err_msg=stem)
    assert printed_miou == pytest.approx(
        miou([(test_maps[s], ground_truth[s]) for s in stems], num_classes, spec['ignore']),
        abs=0.006)


def check_onnx_export(config, checkpoint, image_path, labels, tmp_path):
    """The exported network at the padded input size of ``image_path``: --check's difference,
    and onnxruntime's scores cropped and resized to the image (mmseg's postprocess) give
    ``labels``."""
    import onnxruntime
    import torch.nn.functional as F
    from mmengine.config import Config
    from mmengine.dataset import Compose
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(config)
    init_default_scope('mmseg')
    pipeline = Compose([s for s in cfg.test_pipeline if not s['type'].endswith('Annotations')])
    packed = pipeline(dict(img_path=image_path))
    image = packed['inputs'].float()[[2, 1, 0]]  # BGR -> RGB, (3, h, w) resized
    height, width = image.shape[-2:]
    divisor = cfg.model.data_preprocessor.test_cfg['size_divisor']
    shape = [-(-height // divisor) * divisor, -(-width // divisor) * divisor]
    assert (height, width) != tuple(shape)  # padding to crop off

    _, out = run_tool('export_onnx', [config, checkpoint, '--out', 'model.onnx', '--shape',
                                      *map(str, shape), '--check'])
    difference = float(re.search(r'max abs difference onnxruntime vs PyTorch: (\S+)', out)[1])
    # Scores are probabilities; PyTorch's own float32 rounding moves them by ~3e-5 here (against
    # float64).
    assert difference < 1e-3

    mean = torch.tensor(cfg.model.data_preprocessor.mean).view(3, 1, 1)
    std = torch.tensor(cfg.model.data_preprocessor.std).view(3, 1, 1)
    inputs = F.pad((image - mean) / std, (0, shape[1] - width, 0, shape[0] - height))
    session = onnxruntime.InferenceSession(str(tmp_path / 'model.onnx'),
                                           providers=['CPUExecutionProvider'])
    scores = torch.from_numpy(session.run(None, {'inputs': inputs[None].numpy()})[0])
    assert scores.shape == (1, 150, *shape)
    scores = F.interpolate(scores[:, :, :height, :width], size=labels.shape, mode='bilinear',
                           align_corners=False)
    # onnxruntime's label map is PyTorch's up to near-ties, where float32 rounding decides.
    scores = scores[0].numpy()
    best = scores.max(0)
    differ = scores.argmax(0) != labels
    at_label = np.take_along_axis(scores, labels[None].astype(np.int64), 0)[0]
    assert differ.sum() <= 0.002 * labels.size, differ.sum()
    np.testing.assert_allclose(at_label[differ], best[differ], rtol=1e-3)
