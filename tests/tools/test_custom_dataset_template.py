"""The folder-dataset template, used as its header says: copy, edit the settings, train, test."""
import os
import re
import subprocess
import sys

import numpy as np
import torch
from conftest import REPO
from PIL import Image

import plot
from mmseg_maskformer.datasets.shapes import render_sample

TEMPLATE = os.path.join(
    REPO, 'configs/maskformer/maskformer_r50-d32_1xb8-20k_custom-dataset-512x512.py')
CLASSES = ('ground', 'round thing', 'angular thing')
# Shapes labels -> our classes: background and water are ground, circles round, the rest angular.
TO_CLASS = np.array([0, 0, 1, 2, 2, 2], dtype=np.uint8)


def make_folder_dataset(root):
    for split, count in (('train', 4), ('val', 2)):
        os.makedirs(os.path.join(root, 'img_dir', split))
        os.makedirs(os.path.join(root, 'ann_dir', split))
        for index in range(count):
            sample = render_sample(index, split, size=64, seed=1)
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
        'palette': '[[120, 120, 120], [250, 0, 0], [0, 0, 250]]',
        'img_scale': '(128, 64)',
        'crop_size': '(48, 48)',
        'max_iters': '2',
    }
    for name, value in settings.items():
        text, count = re.subn(rf'^{name} = .*$', f'{name} = {value}', text, flags=re.M)
        assert count == 1, name
    return text.replace("'../_base_/", repr(os.path.join(REPO, 'configs', '_base_'))[:-1] + '/')


TINY = '''
_base_ = ['custom.py']
# A tiny model instead of R50, as in the Shapes configs; no pretrained weights.
model = dict(
    backbone=dict(depth=18, stem_channels=16, base_channels=16, init_cfg=None,
                  norm_cfg=dict(type='BN', requires_grad=True)),
    decode_head=dict(
        in_channels=[16, 32, 64, 128], num_queries=8, mask_channels=32,
        pixel_decoder=dict(feat_channels=32, norm_cfg=dict(type='GN', num_groups=8)),
        transformer_decoder=dict(num_layers=2, embed_dims=32, num_heads=2,
                                 feedforward_channels=64)))
train_dataloader = dict(batch_size=2, num_workers=0, persistent_workers=False)
val_dataloader = dict(num_workers=0, persistent_workers=False)
test_dataloader = val_dataloader
default_hooks = dict(logger=dict(interval=1))
'''


def run(args):
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')])))
    result = subprocess.run([sys.executable] + args, cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_template_trains_and_evaluates_a_folder_dataset(tmp_path):
    data_root = str(tmp_path / 'my_dataset')
    make_folder_dataset(data_root)
    (tmp_path / 'custom.py').write_text(edited_template(data_root))
    config = tmp_path / 'tiny.py'
    config.write_text(TINY)
    work_dir = str(tmp_path / 'work')
    run(['tools/train.py', str(config), '--work-dir', work_dir])
    checkpoint = os.path.join(work_dir, 'iter_2.pth')
    meta = torch.load(checkpoint, map_location='cpu', weights_only=False)['meta']['dataset_meta']
    assert tuple(meta['classes']) == CLASSES
    out = run(['tools/test.py', str(config), checkpoint, '--work-dir', str(tmp_path / 'test')])
    assert re.search(r'mIoU: [0-9.]+', out), out[-2000:]
    table = out[out.rindex('per class results'):]
    for name in CLASSES:
        assert re.search(rf'\| +{name} +\| +[0-9.]+ +\|', table), (name, table)
    # The per-class IoU chart of tools/plot.py reads the same table from the log file.
    ious = plot.read_class_iou(str(tmp_path / 'test'))
    assert tuple(ious) == CLASSES
    mean_iou = float(re.search(r'mIoU: ([0-9.]+)', out).group(1))
    # Both rounded to 2 decimals; classes absent from val are nan and left out of the mean.
    assert abs(np.nanmean(list(ious.values())) - mean_iou) <= 0.01 + 1e-9
