"""Hooks every config of this project gets (``configs/_base_/default_hooks.py``)."""
import random
from typing import List, Optional

import numpy as np
import torch
import torch.distributed as dist
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import HistoryBuffer, print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import BaseLoop

from ..datasets.validation import DataError, check_labels, check_same_size
from ..registry import HOOKS
from .preflight import describe_empty_dataset

# Message-hub key under which DataCheckHook publishes the file names of the current batch.
BATCH_FILES_KEY = 'mmseg_maskformer.batch_files'
RANDOM_STATES_KEY = 'random_states'
HISTORY_KEY = 'message_hub_history'


def capture_random_states() -> dict:
    """The python, numpy, torch (and CUDA) RNG states of this process, as objects that load with
    ``torch.load(weights_only=True)`` (tensors, ints, tuples)."""
    _, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    states = dict(python=random.getstate(), torch=torch.get_rng_state(),
                  numpy=(torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                         float(cached_gaussian)))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states['cuda'] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict) -> None:
    keys, pos, has_gauss, cached_gaussian = states['numpy']
    random.setstate(states['python'])
    np.random.set_state(('MT19937', keys.numpy().astype(np.uint32), pos, has_gauss,
                         cached_gaussian))
    torch.set_rng_state(states['torch'])
    if 'cuda' in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states['cuda'])


class _RestoreAfterReplay:
    """Iterator over training batches that restores the saved RNG states once ``replayed``
    batches have been drawn, i.e. after mmengine's resume replay and before the next batch."""

    def __init__(self, iterator, replayed: int, states: dict):
        self._iterator = iterator
        self._replayed = replayed
        self._states = states

    def __iter__(self):
        return self

    def __next__(self):
        if self._replayed == 0 and self._states is not None:
            restore_random_states(self._states)
            self._states = None
        self._replayed -= 1
        return next(self._iterator)


def _checkpoint_due(runner) -> bool:
    """Whether a CheckpointHook saves after this training iteration (mmengine 0.10.7's rule)."""
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook) and not hook.by_epoch:
            if (hook.every_n_train_iters(runner, hook.interval, hook.save_begin)
                    or (hook.save_last and hook.is_last_train_iter(runner))):
                return True
    return False


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Saves the RNG states of every process in each checkpoint and restores them on
    ``--resume``, so that a resumed run repeats the uninterrupted one bit for bit (dropout,
    augmentation drawn in the main process, anything else seeded from the global generators).

    mmengine 0.10.7 resumes an iteration-based run by drawing (and discarding) the ``k`` batches
    already trained, which puts the sampler and the dataloader workers where they were but moves
    the main process's generators; the states are therefore restored after that replay, just
    before batch ``k + 1`` is drawn. Under DDP every rank's states are gathered at each
    checkpoint iteration and each rank gets its own back. Validation during training leaves the
    states as it found them, so that it does not matter whether a checkpoint iteration is also a
    validation iteration.
    """
    priority = 'VERY_HIGH'

    def __init__(self):
        self._gathered: Optional[List[dict]] = None
        self._loaded: Optional[List[dict]] = None
        self._before_val: Optional[dict] = None

    def before_val(self, runner) -> None:
        self._before_val = capture_random_states()

    def after_val(self, runner) -> None:
        restore_random_states(self._before_val)

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if get_world_size() > 1 and _checkpoint_due(runner):
            self._gathered = [None] * get_world_size()
            dist.all_gather_object(self._gathered, capture_random_states())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._gathered if get_world_size() > 1 else [capture_random_states()]
        self._gathered = None
        if states is not None:  # None: DDP and a save that _checkpoint_due did not foresee
            checkpoint[RANDOM_STATES_KEY] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(RANDOM_STATES_KEY)

    def before_train(self, runner) -> None:
        loaded, self._loaded = self._loaded, None
        resumed_iters = runner.train_loop.iter
        if resumed_iters == 0:
            return  # a fresh run, or load_from: the run's own seed applies
        if loaded is None:
            print_log('The resumed checkpoint has no RNG states (written without RandomStateHook):'
                      ' the run continues, but not bit for bit as if uninterrupted.',
                      logger='current', level=30)
            return
        if len(loaded) != get_world_size():
            print_log(f'The checkpoint holds RNG states of {len(loaded)} processes, this run has '
                      f'{get_world_size()}: RNG states are not restored.', logger='current',
                      level=30)
            return
        states = loaded[get_rank()]
        loop = runner.train_loop
        if hasattr(loop, 'dataloader_iterator'):
            loop.dataloader_iterator = _RestoreAfterReplay(loop.dataloader_iterator,
                                                           resumed_iters, states)
        else:
            restore_random_states(states)  # epoch-based loops do not replay batches


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Makes the checkpoints mmengine writes load with plain ``torch.load(weights_only=True)``,
    without this package.

    mmengine 0.10.7 pickles the message hub's ``HistoryBuffer`` objects with their statistics
    methods (``builtins.getattr(HistoryBuffer, 'mean')``) and numpy arrays, and its runtime info
    holds numpy scalars (``eta``). This hook saves each buffer as plain lists
    (``checkpoint['message_hub_history']``) and numpy scalars as Python numbers, and rebuilds the
    buffers when a checkpoint is loaded, before mmengine's resume reads the message hub.
    Checkpoints without it (mmengine's, mmseg's, older ones of this project) still load safely
    through :mod:`mmseg_maskformer.utils.checkpoint`.
    """
    priority = 'VERY_HIGH'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        info = checkpoint.get('message_hub', {}).get('runtime_info', {})
        for key, value in info.items():
            if isinstance(value, np.generic):
                info[key] = value.item()
        scalars = checkpoint.get('message_hub', {}).get('log_scalars', {})
        history = {}
        for key in [k for k, v in scalars.items() if isinstance(v, HistoryBuffer)]:
            buffer = scalars.pop(key)
            log, count = buffer.data
            history[key] = dict(log=np.asarray(log).tolist(), count=np.asarray(count).tolist(),
                                max_length=buffer.max_length)
        checkpoint[HISTORY_KEY] = history

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        history = checkpoint.pop(HISTORY_KEY, None)
        if history and 'message_hub' in checkpoint:
            scalars = checkpoint['message_hub'].setdefault('log_scalars', {})
            for key, value in history.items():
                scalars[key] = HistoryBuffer(value['log'], value['count'], value['max_length'])


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class DataCheckHook(Hook):
    """Stops training and evaluation at bad data, naming the file.

    - before the run: an empty train/val/test dataset (a mistyped directory or suffix would
      otherwise make mmengine's ``InfiniteSampler`` loop forever; ``tools/train.py`` and
      ``tools/test.py`` check earlier, see :func:`.preflight.check_datasets_not_empty`);
    - every batch: ground-truth labels outside [0, num_classes) other than the ignore value
      (mmseg's ``IoUMetric`` would drop them silently) and an annotation whose size differs from
      its image's;
    - it also publishes the batch's file names in the message hub for the non-finite guard
      (:class:`~mmseg_maskformer.engine.NonFiniteGuardOptimWrapper`).

    ``num_classes`` and ``ignore_index`` default to the model's decode head (else the dataset's
    class count and 255).
    """
    priority = 'VERY_HIGH'

    def __init__(self, num_classes: Optional[int] = None, ignore_index: Optional[int] = None):
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def before_run(self, runner) -> None:
        head = getattr(_unwrap(runner.model), 'decode_head', None)
        if self.num_classes is None:
            self.num_classes = getattr(head, 'num_classes', None)
        if self.ignore_index is None:
            self.ignore_index = getattr(head, 'ignore_index', 255)
        for name in ('_train_loop', '_val_loop', '_test_loop'):
            loop = getattr(runner, name, None)
            if isinstance(loop, BaseLoop):
                dataset = loop.dataloader.dataset
                if len(dataset) == 0:
                    raise DataError(f'The {name[1:-5]} dataset is empty: '
                                    f'{describe_empty_dataset(dataset)}')
                if self.num_classes is None:
                    self.num_classes = len(dataset.metainfo.get('classes', ()))

    def _check(self, runner, data_batch) -> None:
        inputs = data_batch.get('inputs') or []
        samples = data_batch.get('data_samples') or []
        if samples and isinstance(samples[0], (list, tuple)):  # test-time augmentation: per view
            inputs = [image for view in inputs for image in view]
            samples = [sample for view in samples for sample in view]
        runner.message_hub.update_info(
            BATCH_FILES_KEY, [s.metainfo.get('img_path', '?') for s in samples])
        for image, sample in zip(inputs, samples):
            if 'gt_sem_seg' not in sample:
                continue
            labels = sample.gt_sem_seg.data
            source = sample.metainfo.get('seg_map_path', '<unknown annotation file>')
            # Training pipelines transform the labels with the image; test pipelines load them
            # after resizing the image, at the size of the image as read (ori_shape).
            original = sample.metainfo.get('ori_shape')
            if original is None or tuple(labels.shape[-2:]) != tuple(original[:2]):
                check_same_size(image.shape[-2:], labels.shape[-2:],
                                sample.metainfo.get('img_path'), source)
            bad = labels >= self.num_classes
            bad &= labels != self.ignore_index
            if bool(bad.any()) or bool((labels < 0).any()):
                check_labels(labels.cpu().numpy(), self.num_classes, self.ignore_index, source)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._check(runner, data_batch)

    def before_val_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._check(runner, data_batch)

    def before_test_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._check(runner, data_batch)

