"""NonFiniteGuardOptimWrapper: skipped updates leave weights and optimizer state untouched, the
limit on consecutive skips, file names in the error, and all DDP ranks deciding together."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.logging import MessageHub
from mmengine.optim import OptimWrapper

from mmseg_maskformer.engine import NonFiniteGuardOptimWrapper, NonFiniteUpdateError
from mmseg_maskformer.engine.hooks import BATCH_FILES_KEY


def make(max_consecutive_skips=0, files=('a.png', 'b.png')):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    MessageHub.get_current_instance().update_info(BATCH_FILES_KEY, list(files))
    wrapper = NonFiniteGuardOptimWrapper(optimizer=optimizer,
                                         max_consecutive_skips=max_consecutive_skips)
    return model, wrapper


def loss_of(model, scale=1.0):
    return model(torch.ones(4, 3)).square().sum() * scale


def snapshot(model, wrapper):
    return ([p.detach().clone() for p in model.parameters()],
            {k: {n: (v.clone() if torch.is_tensor(v) else v) for n, v in s.items()}
             for k, s in wrapper.optimizer.state.items()})


def assert_same(a, b):
    assert all(torch.equal(x, y) for x, y in zip(a[0], b[0]))
    assert a[1].keys() == b[1].keys()
    for key in a[1]:
        assert all(torch.equal(torch.as_tensor(a[1][key][n]), torch.as_tensor(b[1][key][n]))
                   for n in a[1][key])


def test_a_zero_gradient_step_would_still_move_adamw_weights():
    # Why the guard skips the optimizer step instead of zeroing the gradients.
    model, _ = make()
    wrapper = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5))
    wrapper.update_params(loss_of(model))
    before = snapshot(model, wrapper)
    wrapper.update_params(loss_of(model, 0.0))
    assert not torch.equal(before[0][0], model.weight)


@pytest.mark.parametrize('bad', ['loss', 'gradient'])
def test_non_finite_update_is_skipped_and_counted(bad):
    model, wrapper = make(max_consecutive_skips=1)
    wrapper.update_params(loss_of(model))
    before = snapshot(model, wrapper)
    if bad == 'loss':
        wrapper.update_params(loss_of(model, float('nan')))
    else:  # finite loss, infinite gradient
        handle = model.weight.register_hook(lambda grad: grad * float('inf'))
        wrapper.update_params(loss_of(model))
        handle.remove()
    assert_same(before, snapshot(model, wrapper))
    assert model.weight.grad is None or not model.weight.grad.any()
    assert (wrapper.consecutive_skips, wrapper.skipped_updates) == (1, 1)
    # A finite update goes through and resets the consecutive count, not the total.
    wrapper.update_params(loss_of(model))
    assert not torch.equal(before[0][0], model.weight)
    assert (wrapper.consecutive_skips, wrapper.skipped_updates) == (0, 1)


def test_too_many_consecutive_skips_raise_with_the_file_names():
    model, wrapper = make(max_consecutive_skips=2, files=('img_dir/x.png', 'img_dir/y.png'))
    wrapper.update_params(loss_of(model, float('nan')))
    wrapper.update_params(loss_of(model, float('inf')))
    with pytest.raises(NonFiniteUpdateError, match=r"3 update\(s\) in a row.*img_dir/x.png"):
        wrapper.update_params(loss_of(model, float('nan')))


def test_by_default_the_first_non_finite_loss_stops():
    model, wrapper = make()
    with pytest.raises(NonFiniteUpdateError, match='max_consecutive_skips=0'):
        wrapper.update_params(loss_of(model, float('nan')))


def test_negative_limit_is_rejected():
    with pytest.raises(ValueError, match='max_consecutive_skips'):
        make(max_consecutive_skips=-1)


def _worker(rank, port, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    try:
        model, wrapper = make(max_consecutive_skips=1, files=(f'rank{rank}.png', ))
        before = [p.detach().clone() for p in model.parameters()]
        # Only rank 1's loss is NaN (no DDP here, so no gradient all-reduce spreads it).
        wrapper.update_params(loss_of(model, float('nan') if rank == 1 else 1.0))
        unchanged = all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
        try:
            wrapper.update_params(loss_of(model, float('nan') if rank == 1 else 1.0))
            message = ''
        except NonFiniteUpdateError as error:
            message = str(error)
        results[rank] = (unchanged, wrapper.skipped_updates, message)
    finally:
        dist.destroy_process_group()


def test_all_ranks_skip_together():
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(29541, results), nprocs=2, join=True)
        for rank in (0, 1):
            unchanged, skipped, message = results[rank]
            assert unchanged and skipped == 2
            assert 'rank0.png' in message and 'rank1.png' in message
