"""README "Train on your own data (no Python needed)", run whole as a user runs it.

1. a folder dataset in mmseg's layout (``img_dir/{train,val}/*.jpg``,
   ``ann_dir/{train,val}/*.png``): Shapes pictures with their labels mapped to three custom
   classes and a "don't care" band of 255 at the top of every mask;
2. the template copied to ``configs/my_dataset.py`` (a temporary ``configs/``) with the block at its
   top edited (``data_root``, ``classes``, ``palette``, ``img_scale``, ``crop_size``,
   ``max_iters``); a second config inheriting it swaps the R50 for a tiny ResNet-18 and head (see
   ``TINY``), as the Shapes configs do;
3. ``tools/check_dataset.py configs/my_dataset.py``: the per-class pixel / image counts and the
   ignored fraction of each split equal those computed here from the mask files;
4. ``tools/train.py`` (2 iterations, the validation at the end keeps ``best_mIoU_iter_2.pth``),
   ``tools/test.py ... best_mIoU_iter_*.pth --out DIR``: aAcc, mIoU and the per-class IoU under the
   custom names equal those recomputed from the written label maps and the ground truth;
   ``tools/plot.py curves``: a PNG chart; ``tools/infer.py ... img_dir/val``: label maps equal to
   test.py's pixel for pixel, overlays = the image blended with the class colours.

Not run here, and why:
- ``cp configs/maskformer/...custom-dataset-512x512.py configs/my_dataset.py``: the copy is made
  under a temporary directory, not in the repository's ``configs/`` (tests must not write into
  the checkout); its ``'../_base_/'`` paths are made absolute for that reason.
- the template's own model (MaskFormer R50 with torchvision ImageNet weights): the weights are a
  download, and R50 training is far too slow for a test on 2 CPU cores; the tiny config keeps the
  template's data pipeline, dataset, evaluator, schedule and optimiser (at a higher learning rate).
- ``reduce_zero_label=True`` and other ``img_suffix`` / ``seg_map_suffix`` / ``ignore_index``
  values (left at the template's defaults; ``reduce_zero_label`` data is covered by
  tests/workflows/test_released_model.py, ADE20K layout).
"""
import contextlib
import glob
import io
import os
import re
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from cli_testing import REPO, iou_of_label_maps, load_tool
from mmseg_maskformer.datasets.shapes import render_sample

TEMPLATE = os.path.join(
    REPO, 'configs/maskformer/maskformer_r50-d32_1xb8-20k_custom-dataset-512x512.py')
CLASSES = ('ground', 'round thing', 'angular thing')
PALETTE = [[120, 120, 120], [250, 0, 0], [0, 0, 250]]
# Shapes labels -> our classes: background and water are ground, circles round, the rest angular.
TO_CLASS = np.array([0, 0, 1, 2, 2, 2], dtype=np.uint8)
SPLITS = {'train': 4, 'val': 2}
SIZE = 64
plot = load_tool('plot')


def make_folder_dataset(root):
    for split, count in SPLITS.items():
        os.makedirs(os.path.join(root, 'img_dir', split))
        os.makedirs(os.path.join(root, 'ann_dir', split))
        for index in range(count):
            sample = render_sample(index, split, size=SIZE, seed=1)
            mask = TO_CLASS[sample.semantic]
            mask[:2] = 255  # a "don't care" band
            Image.fromarray(sample.image).save(os.path.join(root, 'img_dir', split, f'{index}.jpg'))
            Image.fromarray(mask).save(os.path.join(root, 'ann_dir', split, f'{index}.png'))


def edited_template(data_root):
    """The template with its settings edited, as a user would."""
    with open(TEMPLATE) as f:
        text = f.read()
    settings = {
        'data_root': repr(data_root),
        'classes': repr(CLASSES),
        'palette': repr(PALETTE),
        'img_scale': '(128, 64)',
        'crop_size': '(48, 48)',
        'max_iters': '2',
    }
    for name, value in settings.items():
        text, count = re.subn(rf'^{name} = .*$', f'{name} = {value}', text, flags=re.M)
        assert count == 1, name
    return text.replace("'../_base_/", repr(os.path.join(REPO, 'configs', '_base_'))[:-1] + '/')


TINY = '''
_base_ = ['my_dataset.py']
# A tiny model instead of R50, as in the Shapes configs; no pretrained weights. The class and
# mask embeddings start from N(0, 1) weights, so that after 2 iterations the model predicts more
# than one class (a constant prediction would make the comparisons of label maps trivial); the
# template sets no seed, and with some seeds (3) the prediction is constant: seed 0 is fixed.
randomness = dict(seed=0)
model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=16, init_cfg=None,
                  norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(
        in_channels=[16, 32, 64, 128], num_queries=8, mask_channels=32,
        pixel_decoder=dict(feat_channels=32, norm_cfg=dict(type='GN', num_groups=8)),
        transformer_decoder=dict(num_layers=2, embed_dims=32, num_heads=2,
                                 feedforward_channels=64),
        init_cfg=dict(type='Normal', std=1.0,
                      override=[dict(name='cls_embed'), dict(name='mask_embed')])))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=1))
'''


def run(args):
    """``python ARGS`` in the repository root; must succeed. Returns (stdout, stdout + stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    result = subprocess.run([sys.executable] + args, cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout, result.stdout + result.stderr


def run_here(tool, argv):
    """``tools/{tool}.py ARGV`` in this process, for the tools that only print (no interpreter
    start-up: ~5 s less than :func:`run`); must succeed. Returns its stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = load_tool(tool).main(argv)
    assert code in (None, 0), out.getvalue()[-3000:]
    return out.getvalue()


def read_masks(data_root, split):
    folder = os.path.join(data_root, 'ann_dir', split)
    return {name[:-4]: np.array(Image.open(os.path.join(folder, name)))
            for name in sorted(os.listdir(folder))}


@pytest.fixture(scope='module')
def workflow(tmp_path_factory):
    """README steps 1-4 in order; each command's output, for the tests below."""
    tmp = tmp_path_factory.mktemp('own_data')
    data_root = str(tmp / 'data' / 'my_dataset')
    make_folder_dataset(data_root)
    (tmp / 'configs').mkdir()
    my_config = str(tmp / 'configs' / 'my_dataset.py')
    with open(my_config, 'w') as f:
        f.write(edited_template(data_root))
    config = str(tmp / 'configs' / 'my_dataset_tiny.py')
    with open(config, 'w') as f:
        f.write(TINY)
    work_dir = str(tmp / 'work_dirs' / 'my_dataset')
    w = SimpleNamespace(data_root=data_root, work_dir=work_dir, config=config)
    w.check_out = run_here('check_dataset', [my_config])
    w.train_out = run(['tools/train.py', config, '--work-dir', work_dir])[1]
    best = glob.glob(os.path.join(work_dir, 'best_mIoU_iter_*.pth'))
    assert len(best) == 1, os.listdir(work_dir)
    w.checkpoint = best[0]
    w.test_dir, w.pred_dir = str(tmp / 'test'), str(tmp / 'predictions')
    w.test_out = run(['tools/test.py', config, w.checkpoint, '--work-dir', w.test_dir,
                      '--out', w.pred_dir])[0]
    w.curves = os.path.join(work_dir, 'curves.png')
    w.curves_out = run_here('plot', ['curves', work_dir, '--out', w.curves])
    w.pictures = os.path.join(work_dir, 'pictures')
    w.infer_out = run(['tools/infer.py', config, w.checkpoint,
                       os.path.join(data_root, 'img_dir', 'val'), '--out-dir', w.pictures])[0]
    return w


def test_check_dataset_counts_the_generated_masks(workflow):
    out = workflow.check_out
    assert out.rstrip().endswith('OK'), out[-2000:]
    for split, count in SPLITS.items():
        masks = list(read_masks(workflow.data_root, split).values())
        total = sum(m.size for m in masks)
        block = out.split(f'[{split}] ', 1)[1]
        assert block.startswith(f'{count} samples, {len(CLASSES)} classes, ignore value 255'), block
        rows = {}
        for line in block.splitlines()[2:3 + len(CLASSES)]:
            match = re.fullmatch(r'(.+?) +(\d+) +([0-9.]+)%(?: +(\d+))?', line.strip())
            assert match, line
            rows[match.group(1)] = match.groups()[1:]
        assert list(rows) == list(CLASSES) + ['(ignored)'], rows
        for label, name in enumerate(CLASSES):
            pixels = sum(int((m == label).sum()) for m in masks)
            images = sum(int((m == label).any()) for m in masks)
            assert pixels > 0
            assert rows[name] == (str(pixels), f'{100 * pixels / total:.2f}', str(images)), name
        ignored = sum(int((m == 255).sum()) for m in masks)
        assert ignored == 2 * SIZE * count  # the band
        assert rows['(ignored)'] == (str(ignored), f'{100 * ignored / total:.2f}', None)


def test_training_keeps_the_best_checkpoint_with_the_custom_classes(workflow):
    assert os.path.basename(workflow.checkpoint) == 'best_mIoU_iter_2.pth'
    meta = torch.load(workflow.checkpoint, map_location='cpu',
                      weights_only=False)['meta']['dataset_meta']
    assert tuple(meta['classes']) == CLASSES
    assert [list(c) for c in meta['palette']] == PALETTE
    assert re.search(r'Iter\(train\) \[2/2\]', workflow.train_out)
    assert 'The best checkpoint with' in workflow.train_out


def test_test_reports_miou_of_its_predictions_under_the_custom_names(workflow):
    out = workflow.test_out
    summary = re.search(r'^aAcc: ([0-9.]+) mIoU: ([0-9.]+) mAcc: ([0-9.]+)$', out, re.M)
    assert summary, out[-2000:]
    table = out[out.rindex('per class results'):]
    printed = {}
    for name in CLASSES:
        match = re.search(rf'\| +{name} +\| +([0-9.]+|nan) +\| +([0-9.]+|nan) +\|', table)
        assert match, (name, table)
        printed[name] = float(match.group(1))
    ground_truth = read_masks(workflow.data_root, 'val')
    predictions = {name: np.array(Image.open(os.path.join(workflow.pred_dir, f'{name}.png')))
                   for name in ground_truth}
    assert sorted(os.listdir(workflow.pred_dir)) == [f'{n}.png' for n in ground_truth]
    for name, labels in predictions.items():
        assert labels.shape == ground_truth[name].shape and labels.max() < len(CLASSES)
    # More than one class predicted: the comparisons below can fail.
    assert len(np.unique(np.concatenate([p.ravel() for p in predictions.values()]))) > 1
    aacc, ious = iou_of_label_maps([(predictions[name], gt) for name, gt in ground_truth.items()],
                                   len(CLASSES))
    # IoUMetric rounds each value to 2 decimals of %.
    np.testing.assert_allclose([printed[name] for name in CLASSES], ious, atol=0.005 + 1e-6)
    assert abs(float(summary.group(2)) - np.nanmean(ious)) <= 0.005 + 1e-6
    assert abs(float(summary.group(1)) - aacc) <= 0.005 + 1e-6
    # tools/plot.py iou reads the same table from the test log.
    assert plot.read_class_iou(workflow.test_dir) == printed


def test_plot_curves_writes_a_png(workflow):
    assert f'wrote {workflow.curves}' in workflow.curves_out
    with Image.open(workflow.curves) as image:
        assert image.format == 'PNG' and image.width > 100 and image.height > 100
        pixels = np.asarray(image.convert('RGB')).reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 10  # lines, text and axes, not a blank canvas
    # The chart's source: one training record per iteration, with the losses.
    records = plot.read_scalars(workflow.work_dir)
    assert [r['iter'] for r in records] == [1, 2]
    assert all('loss' in r and 'lr' in r for r in records)


def test_infer_on_the_val_images_equals_test_predictions(workflow):
    assert '2 images segmented' in workflow.infer_out, workflow.infer_out[-2000:]
    palette = np.array(PALETTE, dtype=np.uint8)
    names = sorted(read_masks(workflow.data_root, 'val'))
    for folder in ('labels', 'overlays'):
        assert sorted(os.listdir(os.path.join(workflow.pictures, folder))) == \
            [f'{n}.png' for n in names]
    for name in names:
        labels = np.array(Image.open(os.path.join(workflow.pictures, 'labels', f'{name}.png')))
        expected = np.array(Image.open(os.path.join(workflow.pred_dir, f'{name}.png')))
        np.testing.assert_array_equal(labels, expected)
        image = np.asarray(Image.open(
            os.path.join(workflow.data_root, 'img_dir', 'val', f'{name}.jpg')).convert('RGB'))
        with Image.open(os.path.join(workflow.pictures, 'overlays', f'{name}.png')) as overlay:
            overlay = np.asarray(overlay.convert('RGB'))
        # The image half-blended with the class colours, a legend column to its right.
        assert overlay.shape[0] >= SIZE and overlay.shape[1] > SIZE
        blended = (image.astype(np.float64) + palette[labels]) / 2
        assert np.abs(overlay[:SIZE, :SIZE] - blended).max() <= 0.5 + 1e-9
