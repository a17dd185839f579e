"""Reliability through tools/train.py and tools/test.py on tiny Shapes data: safe checkpoint
loading, bit-exact resume, errors naming the bad file, the non-finite guard."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from cli_testing import CONFIG, REPO, run, run_in_process, tiny_options

from mmseg_maskformer.datasets.shapes import generate_shapes_dataset
from mmseg_maskformer.datasets.validation import DataError
from mmseg_maskformer.engine import NonFiniteUpdateError
from mmseg_maskformer.utils import checkpoint as safe_checkpoint
from mmseg_maskformer.utils.checkpoint import TRUST_ENV, UntrustedCheckpointError


def safe_load(path):
    return torch.load(path, weights_only=True)


@pytest.fixture(scope='module')
def data_root(trained_shapes):
    return trained_shapes[0]


@pytest.fixture(scope='module')
def own_checkpoint(trained_shapes):
    return trained_shapes[2]


def test_own_checkpoint_loads_with_plain_torch_load(own_checkpoint):
    # What tools/train.py writes (with this project's hooks) needs no global beyond torch's own
    # allow-list: plain torch.load(weights_only=True) reads it, without this package.
    user_globals = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(own_checkpoint)
    finally:
        torch.serialization.add_safe_globals(user_globals)
    assert unsafe == []
    checkpoint = safe_load(own_checkpoint)
    assert 'random_states' in checkpoint and 'message_hub_history' in checkpoint


def _payload_checkpoint(own_checkpoint, tmp_path):
    """The user's checkpoint plus an object whose unpickling writes a marker file."""
    from checkpoint_testing import Payload
    tmp_path.mkdir(parents=True, exist_ok=True)
    marker = tmp_path / 'ran.txt'
    checkpoint = safe_load(own_checkpoint)
    checkpoint['meta']['note'] = Payload(f'open({str(marker)!r}, "w").write("ran")')
    path = tmp_path / 'evil.pth'
    torch.save(checkpoint, path)
    return str(path), marker


@pytest.fixture
def trusted_files(monkeypatch):
    """--trust-checkpoint in this process trusts files for this test only."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    monkeypatch.setattr(safe_checkpoint, '_trusted_files', set())


def test_test_py_and_load_from_refuse_a_payload(own_checkpoint, data_root, tmp_path,
                                                 trusted_files):
    path, marker = _payload_checkpoint(own_checkpoint, tmp_path)
    with pytest.raises(UntrustedCheckpointError, match='the global exec') as raised:
        run_in_process('test', [CONFIG, path, '--work-dir', str(tmp_path / 'test'),
                                '--cfg-options'] + tiny_options(data_root, 2))
    assert path in str(raised.value) and TRUST_ENV in str(raised.value)
    with pytest.raises(UntrustedCheckpointError, match='the global exec'):
        run_in_process('train', [CONFIG, '--work-dir', str(tmp_path / 'train'), '--cfg-options'] +
                       tiny_options(data_root, 2) + [f'load_from={path}'])
    assert not marker.exists()


def test_trust_checkpoint_trusts_only_the_files_named(own_checkpoint, data_root, tmp_path,
                                                      trusted_files):
    # train.py --trust-checkpoint with load_from=evil.pth: a second payload reached through the
    # config (a pretrained backbone) is still refused, and loading it never runs.
    path, marker = _payload_checkpoint(own_checkpoint, tmp_path)
    other, other_marker = _payload_checkpoint(own_checkpoint, tmp_path / 'other')
    with pytest.raises(UntrustedCheckpointError, match=f'{other} holds the global exec'):
        run_in_process('train', [
            CONFIG, '--trust-checkpoint', '--work-dir', str(tmp_path / 'train'), '--cfg-options'
        ] + tiny_options(data_root, 2) + [
            f'load_from={path}', 'model.backbone.init_cfg.type=Pretrained',
            f'model.backbone.init_cfg.checkpoint={other}'
        ])
    assert not other_marker.exists()
    run_in_process('train', [CONFIG, '--trust-checkpoint', '--work-dir', str(tmp_path / 'trusted'),
                             '--cfg-options'] + tiny_options(data_root, 2) + [f'load_from={path}'])
    assert marker.read_text() == 'ran'
    assert TRUST_ENV not in os.environ  # what the processes it starts would inherit


def _final_weights(work_dir, iters):
    return safe_load(os.path.join(work_dir, f'iter_{iters}.pth'))['state_dict']


@pytest.mark.parametrize('num_workers', [0, 2])
def test_resume_reproduces_the_uninterrupted_run_bitwise(data_root, tmp_path, num_workers):
    # 4 iterations straight vs 2, then --resume to 4; validation at iteration 2 in both (it must
    # not shift the training RNG). Dropout (tiny model: 0.1), random flips and the shuffled data
    # order all draw random numbers.
    options = tiny_options(data_root, 4) + [
        f'train_dataloader.num_workers={num_workers}', 'default_hooks.checkpoint.interval=2',
        'train_cfg.val_interval=2'
    ]
    straight, interrupted = str(tmp_path / 'straight'), str(tmp_path / 'interrupted')
    run(['tools/train.py', CONFIG, '--work-dir', straight, '--cfg-options'] + options)
    run(['tools/train.py', CONFIG, '--work-dir', interrupted, '--cfg-options'] + options +
        ['train_cfg.max_iters=2'])
    out = run(['tools/train.py', CONFIG, '--work-dir', interrupted, '--resume', '--cfg-options'] +
              options)
    assert 'resumed epoch: 0, iter: 2' in out
    expected, resumed = _final_weights(straight, 4), _final_weights(interrupted, 4)
    assert expected.keys() == resumed.keys()
    differing = [key for key in expected if not torch.equal(expected[key], resumed[key])]
    assert not differing, differing[:5]
    # The weights did move between iterations 2 and 4 (the comparison is not of a frozen model).
    assert not all(torch.equal(expected[key], _final_weights(straight, 2)[key]) for key in expected)


@pytest.fixture
def small_root(tmp_path):
    """Two training and two validation samples: every training iteration sees both."""
    root = tmp_path / 'data'
    generate_shapes_dataset(str(root), num_train=2, num_val=2, size=64, seed=0)
    return root


def _first(root, folder):
    return sorted((root / folder).glob('*.png'))[0]


def _train_args(root, tmp_path, extra=()):
    return [CONFIG, '--work-dir', str(tmp_path / 'work'), '--cfg-options'
            ] + tiny_options(str(root), 2) + list(extra)


def _failing_training(root, tmp_path, error, extra=()):
    """Train in this process (these runs stop within the first iterations); the error raised."""
    with pytest.raises(error) as raised:
        run_in_process('train', _train_args(root, tmp_path, extra))
    return str(raised.value)


def test_label_out_of_range_names_the_file_in_training_and_evaluation(small_root, tmp_path):
    for split in ('train', 'val'):
        path = _first(small_root, f'ann_dir/{split}')
        labels = np.array(Image.open(path))
        labels[:4, :4] = 9
        Image.fromarray(labels).save(path)
    message = _failing_training(small_root, tmp_path, DataError)
    assert 'label 9 out of range' in message
    assert str(_first(small_root, 'ann_dir/train')) in message
    # Evaluation too (mmseg's IoUMetric alone would drop label 9 without a word).
    checkpoint = tmp_path / 'init.pth'
    torch.save(dict(state_dict={}, meta={}), checkpoint)
    with pytest.raises(DataError, match='label 9 out of range') as raised:
        run_in_process('test', [CONFIG, str(checkpoint), '--work-dir', str(tmp_path / 't'),
                                '--cfg-options'] + tiny_options(str(small_root), 2))
    assert str(_first(small_root, 'ann_dir/val')) in str(raised.value)


def test_corrupt_image_names_the_file(small_root, tmp_path):
    path = _first(small_root, 'img_dir/train')
    path.write_bytes(b'not an image')
    with pytest.raises(Exception) as raised:
        run_in_process('train', _train_args(small_root, tmp_path))
    assert str(path) in str(raised.getrepr())


def test_size_mismatch_names_the_file(small_root, tmp_path):
    path = _first(small_root, 'ann_dir/train')
    Image.open(path).resize((32, 32), Image.NEAREST).save(path)
    message = _failing_training(small_root, tmp_path, DataError)
    assert str(path) in message and '(32, 32)' in message and '(64, 64)' in message


def test_empty_or_mistyped_data_directory_is_an_error_not_a_hang(small_root, tmp_path):
    for path in (small_root / 'img_dir/train').glob('*.png'):
        path.unlink()
    message = _failing_training(small_root, tmp_path, DataError)
    assert 'The train dataset is empty' in message and 'img_dir/train' in message
    shutil.rmtree(small_root / 'img_dir/train')
    with pytest.raises(Exception) as raised:
        run_in_process('train', _train_args(small_root, tmp_path))
    assert 'img_dir/train' in str(raised.value)



def test_empty_dataset_behind_a_wrapper_is_an_error(small_root):
    from mmengine.config import Config

    from mmseg_maskformer.engine.preflight import check_datasets_not_empty
    for path in (small_root / 'img_dir/train').glob('*.png'):
        path.unlink()
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.data_root = str(small_root)
    cfg.train_dataloader.dataset = dict(type='RepeatDataset', times=3,
                                        dataset=cfg.train_dataloader.dataset)
    with pytest.raises(DataError, match='The train dataset is empty: .*img_dir/train'):
        check_datasets_not_empty(cfg, splits=('train', ))


GUARD = 'optim_wrapper.type=mmseg_maskformer.NonFiniteGuardOptimWrapper'
# A NaN weight of the class loss: every loss is NaN from the first iteration on.
NAN_LOSS = 'model.decode_head.loss_cls.loss_weight=nan'


def test_non_finite_loss_stops_training_with_the_file_names(small_root, tmp_path):
    message = _failing_training(small_root, tmp_path, NonFiniteUpdateError, [GUARD, NAN_LOSS])
    assert 'max_consecutive_skips=0' in message
    assert all(str(p) in message for p in (small_root / 'img_dir/train').glob('*.png'))


def test_non_finite_updates_are_skipped_up_to_the_limit(small_root, tmp_path, capfd):
    message = _failing_training(small_root, tmp_path, NonFiniteUpdateError,
                                [GUARD, 'optim_wrapper.max_consecutive_skips=2', NAN_LOSS,
                                 'train_cfg.max_iters=6'])
    out = capfd.readouterr().out
    assert out.count('Skipped an update with a non-finite loss or gradient') == 2
    assert '(2 in a row, 2 in all)' in out
    assert 'Non-finite loss or gradient in 3 update(s) in a row' in message


def test_ddp_with_a_rank_whose_batch_has_no_segment(tmp_path):
    # Two training images, one per rank per iteration (batch 1): one of them is all ignore, so in
    # every iteration one rank has no segment at all. Training must neither hang nor fail, and
    # num_masks must be the average over both ranks whichever rank drew which image.
    root = tmp_path / 'data'
    generate_shapes_dataset(str(root), num_train=2, num_val=2, size=64, seed=0)
    empty, full = sorted((root / 'ann_dir/train').glob('*.png'))
    Image.fromarray(np.full((64, 64), 255, np.uint8)).save(empty)
    segments = len(set(np.unique(np.array(Image.open(full))).tolist()) - {255})
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable, PORT='29523')
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', str(tmp_path / 'work'),
         '--cfg-options'] + tiny_options(str(root), 3) + ['train_dataloader.batch_size=1'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    scalars = [
        json.loads(line) for d, _, files in os.walk(tmp_path / 'work') for name in files
        if name == 'scalars.json' for line in open(os.path.join(d, name))
    ]
    logged = [s['decode.num_masks'] for s in scalars if 'decode.num_masks' in s]
    assert logged == [max(segments / 2, 1.0)] * 3, (logged, segments)
