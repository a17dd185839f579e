"""tools/train.py, tools/test.py, --resume, load_from and dist_train.sh on tiny Shapes data."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from mmseg_maskformer.datasets.shapes import generate_shapes_dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-128x128.py')


def tiny_options(data_root, iters):
    return [
        f'train_dataloader.dataset.data_root={data_root}',
        f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}',
        'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
        'val_dataloader.persistent_workers=False', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False', f'train_cfg.max_iters={iters}',
        f'train_cfg.val_interval={iters}', f'default_hooks.checkpoint.interval={iters}',
        'default_hooks.logger.interval=1', f'param_scheduler.1.end={iters}',
        'param_scheduler.0.end=1', 'param_scheduler.1.begin=1'
    ]


def run(args, **kwargs):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    result = subprocess.run([sys.executable] + args, cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_train=8, num_val=4, size=64, seed=0)
    return str(root)


@pytest.fixture(scope='module')
def trained(data_root, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('work'))
    run(['tools/train.py', CONFIG, '--work-dir', work_dir, '--cfg-options'] +
        tiny_options(data_root, 3))
    with open(os.path.join(work_dir, 'last_checkpoint')) as f:
        checkpoint = f.read().strip()
    return work_dir, checkpoint


def test_test_py_loads_checkpoint_and_prints_miou(trained, data_root, tmp_path):
    _, checkpoint = trained
    out = run(['tools/test.py', CONFIG, checkpoint, '--work-dir', str(tmp_path), '--out',
               str(tmp_path / 'pred'), '--cfg-options'] + tiny_options(data_root, 3))
    match = re.search(r'mIoU: ([0-9.]+)', out)
    assert match, out[-2000:]
    # mIoU recomputed from the saved predictions and the ground truth (mmseg's definition: the
    # mean over classes that occur in ground truth or prediction).
    intersection, union = np.zeros(6), np.zeros(6)
    for path in sorted((tmp_path / 'pred').glob('*.png')):
        pred = np.array(Image.open(path))
        gt = np.array(Image.open(os.path.join(data_root, 'ann_dir/val', path.name)))
        for c in range(6):
            intersection[c] += ((pred == c) & (gt == c)).sum()
            union[c] += ((pred == c) | (gt == c)).sum()
    assert len(list((tmp_path / 'pred').glob('*.png'))) == 4
    expected = 100 * np.mean(intersection[union > 0] / union[union > 0])
    assert float(match.group(1)) == pytest.approx(expected, abs=0.006)


def test_test_py_tta_merges_views_and_prints_miou(trained, data_root, tmp_path):
    # Multi-scale + flip on the Shapes config: 6 scales × 2 flips per image, scores averaged.
    _, checkpoint = trained
    out = run(['tools/test.py', CONFIG, checkpoint, '--tta', '--work-dir', str(tmp_path),
               '--cfg-options'] + tiny_options(data_root, 3))
    match = re.search(r'mIoU: ([0-9.]+)', out)
    assert match, out[-2000:]
    assert 0.0 <= float(match.group(1)) <= 100.0


def test_test_py_tta_refuses_panoptic_configs(trained, tmp_path):
    _, checkpoint = trained
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, 'tools/test.py', PANOPTIC_CONFIG, checkpoint, '--tta',
                             '--work-dir', str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode != 0
    assert 'panoptic outputs is not part of the official' in result.stderr, result.stderr[-2000:]


def test_resume_continues_from_last_iteration(trained, data_root):
    work_dir, _ = trained
    out = run(['tools/train.py', CONFIG, '--work-dir', work_dir, '--resume', '--cfg-options'] +
              tiny_options(data_root, 5))
    assert 'resumed epoch: 0, iter: 3' in out, out[-3000:]
    with open(os.path.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_5.pth')


def test_load_from_initialises_weights(trained, data_root, tmp_path):
    _, checkpoint = trained
    out = run(['tools/train.py', CONFIG, '--work-dir', str(tmp_path), '--cfg-options'] +
              tiny_options(data_root, 2) + [f'load_from={checkpoint}'])
    assert f'Load checkpoint from {checkpoint}' in out, out[-3000:]


def test_two_process_ddp_training_through_dist_train_sh(data_root, tmp_path):
    # dist_train.sh on CPU (gloo). That num_masks is all-reduced is checked exactly, with known
    # per-rank counts, in test_distributed_num_masks.py; here it must reach the training log.
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable, PORT='29517')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(tmp_path), '--cfg-options'] +
        tiny_options(data_root, 2),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    scalars = [
        json.loads(line) for d, _, files in os.walk(tmp_path) for name in files
        if name == 'scalars.json' for line in open(os.path.join(d, name))
    ]
    logged = [s['decode.num_masks'] for s in scalars if 'decode.num_masks' in s]
    assert logged, scalars


PANOPTIC_CONFIG = os.path.join(
    REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-panoptic-128x128.py')


def test_panoptic_config_trains_tests_and_draws(data_root, tmp_path):
    run(['tools/train.py', PANOPTIC_CONFIG, '--work-dir', str(tmp_path), '--cfg-options'] +
        tiny_options(data_root, 2))
    checkpoint = os.path.join(str(tmp_path), 'iter_2.pth')
    out = run(['tools/test.py', PANOPTIC_CONFIG, checkpoint, '--work-dir', str(tmp_path / 'test'),
               '--cfg-options'] + tiny_options(data_root, 2))
    for key in ('PQ', 'PQ_th', 'PQ_st', 'mIoU'):
        assert re.search(rf'\b{key}: [0-9.]+', out), (key, out[-2000:])
    panels = tmp_path / 'panels'
    run(['tools/visualize.py', PANOPTIC_CONFIG, checkpoint, '--out-dir', str(panels), '--num', '2',
         '--cfg-options'] + tiny_options(data_root, 2))
    assert len(list(panels.glob('*.png'))) == 2


def test_without_extension_a_training_step_runs_with_one_warning(tmp_path):
    script = '''
import warnings, torch, sys
sys.path.insert(0, 'tests/models')
from head_testing import random_feats, sample_with_gt, tiny_head_cfg
from mmengine.registry import init_default_scope
from mmseg.registry import MODELS
init_default_scope('mmseg')
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    head = MODELS.build(tiny_head_cfg(loss_impl=None))
    for _ in range(2):
        losses = head.loss(random_feats(), [sample_with_gt(torch.randint(0, 5, (64, 64)))] * 2, None)
        sum(v for k, v in losses.items() if 'loss' in k).backward()
ours = [w for w in caught if 'mmseg_maskformer' in str(w.message)]
print(len(ours), ours[0].message if ours else '')
'''
    env = dict(os.environ, MMSEG_MASKFORMER_NO_EXTENSION='1', PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, '-c', script], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    count, message = result.stdout.strip().split(' ', 1)
    assert count == '1' and 'pure-PyTorch reference' in message, result.stdout
