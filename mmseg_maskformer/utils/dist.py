"""Distributed runs of the tools: start-up without CUDA (``--launcher pytorch`` on gloo) and a
clean exit on every rank."""
import contextlib
from typing import Iterator

import torch
import torch.distributed as dist


def setup_cpu_distributed(cfg, launcher: str) -> None:
    """Make mmengine 0.10.7 run distributed on CPU-only torch.

    Its ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``, both of which fail without CUDA. The Runner skips ``init_dist``
    when a process group exists, and a ``model_wrapper_cfg`` overrides the device ids, so this
    starts a gloo group and wraps the model with ``device_ids=None`` (CPU DDP).
    """
    if launcher != 'pytorch' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel', device_ids=None,
                                     broadcast_buffers=False,
                                     find_unused_parameters=cfg.get('find_unused_parameters', False))


@contextlib.contextmanager
def destroy_process_group_on_exit() -> Iterator[None]:
    """Destroy the process group (if any) when the block ends.

    Left to interpreter shutdown, the gloo process group's threads can be torn down while still
    joinable, and a rank dies with ``terminate called without an active exception`` (SIGABRT)
    after its work is done (torch also warns "destroy_process_group() was not called before
    program exit"). After a successful block the ranks first meet at a barrier, so that none
    closes its connections while another still reads from them; after an error there is no
    barrier (the other ranks may never reach it).
    """
    try:
        yield
    except BaseException:
        _destroy_process_group(synchronize=False)
        raise
    _destroy_process_group(synchronize=True)


def _destroy_process_group(synchronize: bool) -> None:
    if dist.is_available() and dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()
