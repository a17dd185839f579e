"""Optimizer wrappers that refuse updates from a non-finite loss or gradient."""
from typing import List

import torch
import torch.distributed as dist
from mmengine.dist import get_world_size
from mmengine.logging import MessageHub, print_log
from mmengine.optim import AmpOptimWrapper, OptimWrapper

from ..registry import OPTIM_WRAPPERS
from .hooks import BATCH_FILES_KEY


class NonFiniteUpdateError(FloatingPointError):
    """Training met a non-finite loss or gradient more often in a row than allowed."""


class _NonFiniteGuard:
    """Mixin: ``step`` goes ahead only when this update's loss (and, unless a loss scaler handles
    overflow, the gradients) are finite on every process; otherwise no optimizer step is taken
    (not even a zero-gradient one, which would still move AdamW's weights through weight decay and
    its moment estimates), the gradients are cleared by the caller as usual, the skip is logged
    with the batch's file names and counted (``skipped_updates`` in the log). More than
    ``max_consecutive_skips`` skips in a row raise :class:`NonFiniteUpdateError` with the file
    names; the default 0 stops at the first."""
    check_gradients = True

    def __init__(self, *args, max_consecutive_skips: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        if max_consecutive_skips < 0:
            raise ValueError(f'max_consecutive_skips must be >= 0, got {max_consecutive_skips}')
        self.max_consecutive_skips = max_consecutive_skips
        self.consecutive_skips = 0
        self.skipped_updates = 0
        self._loss_finite = True

    def update_params(self, loss: torch.Tensor, step_kwargs=None, zero_kwargs=None) -> None:
        # With gradient accumulation, one non-finite micro-batch loss spoils the whole update.
        self._loss_finite = self._loss_finite and bool(torch.isfinite(loss.detach()).all())
        super().update_params(loss, step_kwargs, zero_kwargs)

    def _update_is_finite(self) -> bool:
        finite = self._loss_finite
        if finite and self.check_gradients:
            grads = [p.grad for group in self.optimizer.param_groups for p in group['params']
                     if p.grad is not None]
            finite = bool(torch.stack([g.detach().abs().amax() for g in grads]).isfinite().all()
                          ) if grads else True
        if get_world_size() > 1:
            device = 'cuda' if dist.get_backend() == 'nccl' else 'cpu'
            flag = torch.tensor([float(finite)], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
            finite = bool(flag.item())
        return finite

    def step(self, **kwargs) -> None:
        finite = self._update_is_finite()
        self._loss_finite = True
        if finite:
            self.consecutive_skips = 0
            super().step(**kwargs)
            return
        self.consecutive_skips += 1
        self.skipped_updates += 1
        files = _batch_files()
        message_hub = MessageHub.get_current_instance()
        message_hub.update_scalar('train/skipped_updates', self.skipped_updates)
        if self.consecutive_skips > self.max_consecutive_skips:
            raise NonFiniteUpdateError(
                f'Non-finite loss or gradient in {self.consecutive_skips} update(s) in a row '
                f'(allowed: max_consecutive_skips={self.max_consecutive_skips}); last batch: '
                f'{files}')
        print_log(f'Skipped an update with a non-finite loss or gradient '
                  f'({self.consecutive_skips} in a row, {self.skipped_updates} in all); batch: '
                  f'{files}', logger='current', level=30)


def _batch_files() -> List[str]:
    """The files of this update's batch on every process (recorded by DataCheckHook)."""
    files = MessageHub.get_current_instance().get_info(BATCH_FILES_KEY) or ['<unknown>']
    if get_world_size() > 1:
        gathered = [None] * get_world_size()
        dist.all_gather_object(gathered, files)
        files = [name for rank_files in gathered for name in rank_files]
    return files


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardOptimWrapper(_NonFiniteGuard, OptimWrapper):
    """:class:`mmengine.optim.OptimWrapper` with the non-finite guard of :class:`_NonFiniteGuard`
    (config: ``optim_wrapper=dict(type='mmseg_maskformer.NonFiniteGuardOptimWrapper',
    max_consecutive_skips=0, ...)``)."""


@OPTIM_WRAPPERS.register_module()
class NonFiniteGuardAmpOptimWrapper(_NonFiniteGuard, AmpOptimWrapper):
    """:class:`mmengine.optim.AmpOptimWrapper` with the non-finite guard. Only the loss is checked:
    non-finite fp16 gradients are the loss scaler's business (it skips that step and lowers the
    scale), and a guard on them would fight it."""
    check_gradients = False
