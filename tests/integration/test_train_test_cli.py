"""tools/train.py, tools/test.py, --resume, load_from and dist_train.sh on tiny Shapes data."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from checkpoint_testing import random_checkpoint
from cli_testing import (CONFIG, PANOPTIC_CONFIG, REPO, iou_of_label_maps, run, run_in_process,
                         tiny_options)
from mmseg_maskformer.datasets.shapes import rgb2id

@pytest.fixture(scope='module')
def data_root(trained_shapes):
    return trained_shapes[0]


@pytest.fixture(scope='module')
def trained(trained_shapes):
    return trained_shapes[1], trained_shapes[2]


def printed_miou(out):
    match = re.search(r'mIoU: ([0-9.]+)', out)
    assert match, out[-2000:]
    return float(match.group(1))


def miou_of_saved_predictions(pred_dir, data_root, num_classes=6):
    """mIoU of the label maps ``tools/test.py --out`` saved, against the ground truth."""
    paths = sorted(pred_dir.glob('*.png'))
    assert len(paths) == 4
    pairs = [(np.array(Image.open(path)),
              np.array(Image.open(os.path.join(data_root, 'ann_dir/val', path.name))))
             for path in paths]
    return np.nanmean(iou_of_label_maps(pairs, num_classes)[1])


def test_test_py_loads_checkpoint_and_prints_miou(trained, data_root, tmp_path):
    _, checkpoint = trained
    out = run(['tools/test.py', CONFIG, checkpoint, '--work-dir', str(tmp_path), '--out',
               str(tmp_path / 'pred'), '--cfg-options'] + tiny_options(data_root, 3))
    expected = miou_of_saved_predictions(tmp_path / 'pred', data_root)
    assert printed_miou(out) == pytest.approx(expected, abs=0.006)
    # The fused labels (the default with the extension) are those of mmseg's post-processing on
    # the reference scores, pixel for pixel.
    reference = run_in_process('test', [CONFIG, checkpoint, '--work-dir', str(tmp_path), '--out',
                                        str(tmp_path / 'reference'), '--cfg-options'] +
                               tiny_options(data_root, 3) +
                               ['model.decode_head.test_cfg.impl=reference'])
    assert reference['mIoU'] == printed_miou(out)
    for path in (tmp_path / 'pred').glob('*.png'):
        assert np.array_equal(np.array(Image.open(path)),
                              np.array(Image.open(tmp_path / 'reference' / path.name))), path.name


def test_test_py_tta_merges_views_and_prints_miou(data_root, tmp_path):
    # Multi-scale + flip on the Shapes config: 6 scales × 2 flips per image, scores averaged. With
    # random weights (noise on the head: several classes per image) the views disagree, so the
    # merged labels differ from single scale.
    checkpoint = random_checkpoint(CONFIG, str(tmp_path / 'random.pth'))
    tta = run_in_process('test', [CONFIG, checkpoint, '--tta', '--work-dir', str(tmp_path), '--out',
                                  str(tmp_path / 'tta'), '--cfg-options'] +
                         tiny_options(data_root, 3))['mIoU']
    assert tta == pytest.approx(miou_of_saved_predictions(tmp_path / 'tta', data_root), abs=0.006)
    single = run_in_process('test', [CONFIG, checkpoint, '--work-dir', str(tmp_path), '--out',
                                     str(tmp_path / 'single'), '--cfg-options'] +
                            tiny_options(data_root, 3))['mIoU']
    assert single != pytest.approx(tta, abs=0.01)
    assert any(not np.array_equal(np.array(Image.open(path)),
                                  np.array(Image.open(tmp_path / 'single' / path.name)))
               for path in (tmp_path / 'tta').glob('*.png'))


def test_test_py_tta_refuses_panoptic_configs(trained, tmp_path):
    _, checkpoint = trained
    with pytest.raises(SystemExit, match='panoptic outputs is not part of the official'):
        run_in_process('test', [PANOPTIC_CONFIG, checkpoint, '--tta', '--work-dir', str(tmp_path)])


def test_resume_continues_from_last_iteration(trained, data_root, tmp_path):
    work_dir = str(tmp_path / 'work')
    shutil.copytree(trained[0], work_dir)
    with open(os.path.join(work_dir, 'last_checkpoint'), 'w') as f:  # mmengine's absolute path
        f.write(os.path.join(work_dir, 'iter_3.pth'))
    out = run(['tools/train.py', CONFIG, '--work-dir', work_dir, '--resume', '--cfg-options'] +
              tiny_options(data_root, 5))
    assert 'resumed epoch: 0, iter: 3' in out, out[-3000:]
    with open(os.path.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_5.pth')


def _parameters(path):
    """The trainable weights of a checkpoint (BatchNorm statistics move in any training step)."""
    state = torch.load(path, weights_only=True)['state_dict']
    return {k: v for k, v in state.items() if not k.endswith(('running_mean', 'running_var',
                                                               'num_batches_tracked'))}


def test_load_from_initialises_weights(trained, data_root, tmp_path):
    # Two iterations at learning rate 0 after load_from: every weight is the loaded one; without
    # load_from they are the fresh initialisation.
    _, checkpoint = trained
    frozen = tiny_options(data_root, 2) + ['optim_wrapper.optimizer.lr=0.0']
    run_in_process('train', [CONFIG, '--work-dir', str(tmp_path / 'loaded'), '--cfg-options'] +
                   frozen + [f'load_from={checkpoint}'])
    run_in_process('train', [CONFIG, '--work-dir', str(tmp_path / 'fresh'), '--cfg-options'] +
                   frozen)
    loaded = _parameters(tmp_path / 'loaded' / 'iter_2.pth')
    fresh = _parameters(tmp_path / 'fresh' / 'iter_2.pth')
    source = _parameters(checkpoint)
    assert loaded.keys() == source.keys()
    assert all(torch.equal(loaded[k], source[k]) for k in source)
    assert not all(torch.equal(fresh[k], source[k]) for k in source)


def segments_in(data_root, index):
    """Segments of a Shapes training image: its distinct labels other than 255 (the training
    pipeline only flips, which keeps them)."""
    names = sorted(os.listdir(os.path.join(data_root, 'ann_dir/train')))
    labels = np.array(Image.open(os.path.join(data_root, 'ann_dir/train', names[index])))
    return len(set(np.unique(labels).tolist()) - {255})


def test_two_process_ddp_training_through_dist_train_sh(data_root, tmp_path):
    # dist_train.sh on CPU (gloo), both ranks exit cleanly. num_masks (the official criterion's
    # normaliser, all-reduced in its loss) is the mean over ranks of each rank's segment count,
    # which differs between the ranks here: without shuffling, rank r
    # draws images r, r + 2, ... two at a time, so iteration 1 has images 0, 2 on rank 0 and 1, 3
    # on rank 1, iteration 2 images 4, 6 and 5, 7.
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable, PORT='29517')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(tmp_path), '--cfg-options'] +
        tiny_options(data_root, 2) + ['train_dataloader.sampler.shuffle=False'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert 'terminate called' not in result.stderr
    scalars = [
        json.loads(line) for d, _, files in os.walk(tmp_path) for name in files
        if name == 'scalars.json' for line in open(os.path.join(d, name))
    ]
    logged = [s['decode.num_masks'] for s in scalars if 'decode.num_masks' in s]
    per_iteration = [sum(segments_in(data_root, i) for i in range(4 * k, 4 * k + 4)) / 2
                     for k in range(2)]
    assert logged == pytest.approx(per_iteration, abs=1e-4)


def test_panoptic_config_trains_tests_and_draws(data_root, tmp_path):
    run_in_process('train', [PANOPTIC_CONFIG, '--work-dir', str(tmp_path), '--cfg-options'] +
                   tiny_options(data_root, 2))
    checkpoint = os.path.join(str(tmp_path), 'iter_2.pth')
    out_dir = tmp_path / 'pred'
    out = run(['tools/test.py', PANOPTIC_CONFIG, checkpoint, '--work-dir', str(tmp_path / 'test'),
               '--out', str(out_dir), '--cfg-options'] + tiny_options(data_root, 2))
    for key in ('PQ', 'PQ_th', 'PQ_st', 'mIoU'):
        assert re.search(rf'\b{key}: [0-9.]+', out), (key, out[-2000:])
    # --out: the label maps (IoUMetric) and the COCO-panoptic files (PanopticQualityMetric),
    # whose PNG ids and areas agree with panoptic.json
    assert printed_miou(out) == pytest.approx(miou_of_saved_predictions(out_dir, data_root),
                                              abs=0.006)
    with open(out_dir / 'panoptic.json') as f:
        written = json.load(f)
    assert len(written['annotations']) == 4 and len(written['categories']) == 6
    for annotation in written['annotations']:
        ids = rgb2id(np.array(Image.open(out_dir / 'panoptic' / annotation['file_name'])))
        areas = {s['id']: s['area'] for s in annotation['segments_info']}
        assert {int(i): int((ids == i).sum()) for i in np.unique(ids) if i != 0} == areas
    panels = tmp_path / 'panels'
    run_in_process('visualize', [PANOPTIC_CONFIG, checkpoint, '--out-dir', str(panels), '--num',
                                 '2', '--cfg-options'] + tiny_options(data_root, 2))
    assert len(list(panels.glob('*.png'))) == 2


MASK2FORMER_CONFIG = os.path.join(REPO, 'configs', 'mask2former',
                                  'mask2former_r18-tiny_1xb8-2k_shapes-128x128.py')


def test_mask2former_shapes_config_trains_and_tests(data_root, tmp_path):
    run_in_process('train', [MASK2FORMER_CONFIG, '--work-dir', str(tmp_path), '--cfg-options'] +
                   tiny_options(data_root, 2))
    checkpoint = os.path.join(str(tmp_path), 'iter_2.pth')
    out = run(['tools/test.py', MASK2FORMER_CONFIG, checkpoint, '--work-dir',
               str(tmp_path / 'test'), '--out', str(tmp_path / 'pred'), '--cfg-options'] +
              tiny_options(data_root, 2))
    assert printed_miou(out) == pytest.approx(
        miou_of_saved_predictions(tmp_path / 'pred', data_root), abs=0.006)
    # Multi-scale + flip with the averaging merge, as for MaskFormer.
    tta = run_in_process('test', [MASK2FORMER_CONFIG, checkpoint, '--tta', '--work-dir',
                                  str(tmp_path / 'tta-test'), '--out', str(tmp_path / 'tta'),
                                  '--cfg-options'] + tiny_options(data_root, 2))['mIoU']
    assert tta == pytest.approx(miou_of_saved_predictions(tmp_path / 'tta', data_root), abs=0.006)


def test_mask2former_panoptic_config_trains_and_reports_pq(data_root, tmp_path):
    config = MASK2FORMER_CONFIG.replace('shapes-128x128', 'shapes-panoptic-128x128')
    run_in_process('train', [config, '--work-dir', str(tmp_path), '--cfg-options'] +
                   tiny_options(data_root, 2))
    out_dir = tmp_path / 'pred'
    metrics = run_in_process('test', [config, os.path.join(str(tmp_path), 'iter_2.pth'),
                                      '--work-dir', str(tmp_path / 'test'), '--out', str(out_dir),
                                      '--cfg-options'] + tiny_options(data_root, 2))
    assert {'PQ', 'PQ_th', 'PQ_st', 'mIoU'} <= set(metrics)
    with open(out_dir / 'panoptic.json') as f:
        assert len(json.load(f)['annotations']) == 4


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
