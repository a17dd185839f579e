"""Running the tools as a user does (subprocesses in the repository root) on tiny Shapes data."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.abspath(__file__)).rsplit(os.sep, 1)[0]
CONFIG = os.path.join(REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-128x128.py')
SEMANTIC_CONFIG = CONFIG
PANOPTIC_CONFIG = os.path.join(
    REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-panoptic-128x128.py')


def tiny_options(data_root, iters):
    """--cfg-options for a run of ``iters`` iterations on the Shapes copy in ``data_root``:
    batch 2, no dataloader workers, validation and a checkpoint at the end, a log every step."""
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


def tool_env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO, **extra)
    env.pop('MMSEG_MASKFORMER_TRUST_CHECKPOINTS', None)
    return env


def run(args, timeout=600, **kwargs):
    """Run ``python ARGS`` in the repository root; it must succeed. Returns stdout + stderr."""
    result = subprocess.run([sys.executable] + args, cwd=REPO, env=tool_env(), capture_output=True,
                            text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def run_failing(args, timeout=300):
    """Run ``python ARGS``; it must fail. Returns stdout + stderr."""
    result = subprocess.run([sys.executable] + args, cwd=REPO, env=tool_env(), capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode != 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout + result.stderr


def load_tool(name):
    """``tools/{name}.py`` as a module, to call its functions in-process (plain ``import test``
    would find the standard library's package)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  os.path.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(tool, argv):
    """``tools/{tool}.py ARGV`` in this process (no interpreter start-up, ~5 s less than
    :func:`run`). Runs of train / test get their own experiment name: mmengine names loggers,
    message hubs and visualizers after the config and the current second, and a second run in
    the same second would share the first one's."""
    import uuid
    if tool in ('train', 'test'):
        name = f'experiment_name=in_process_{uuid.uuid4().hex}'
        argv = list(argv) + ([name] if '--cfg-options' in argv else ['--cfg-options', name])
    return load_tool(tool).main(argv)


def iou_of_label_maps(pairs, num_classes, ignore_index=255):
    """mmseg's ``IoUMetric`` recomputed from ``(prediction, ground truth)`` label maps: totals
    over all pairs, ground-truth pixels of ``ignore_index`` left out. Returns ``(aAcc, per-class
    IoU)`` in percent, the IoU NaN for a class in neither; mIoU is their ``np.nanmean``."""
    import numpy as np
    intersection, union = np.zeros(num_classes), np.zeros(num_classes)
    correct = valid_pixels = 0
    for prediction, ground_truth in pairs:
        valid = ground_truth != ignore_index
        prediction, ground_truth = prediction[valid].astype(np.int64), ground_truth[valid]
        correct += int((prediction == ground_truth).sum())
        valid_pixels += int(valid.sum())
        intersection += np.bincount(ground_truth[prediction == ground_truth],
                                    minlength=num_classes)[:num_classes]
        union += (np.bincount(prediction, minlength=num_classes)[:num_classes] +
                  np.bincount(ground_truth, minlength=num_classes)[:num_classes])
    union -= intersection
    with np.errstate(invalid='ignore'):
        return 100 * correct / valid_pixels, 100 * intersection / union
