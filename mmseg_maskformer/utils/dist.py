"""Distributed training and testing on machines without CUDA (``--launcher pytorch``)."""
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
