"""num_masks is all-reduced across processes (official criterion.py), checked through the head's loss."""
import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

HERE = os.path.dirname(os.path.abspath(__file__))


def _worker(rank, world_size, port, results):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'models'))
        from head_testing import random_feats, sample_with_gt, tiny_head_cfg
        from mmengine.registry import init_default_scope
        from mmseg.registry import MODELS
        init_default_scope('mmseg')
        torch.manual_seed(0)
        head = MODELS.build(tiny_head_cfg())
        # Rank 0 sees 2 segments, rank 1 sees 5: every rank must normalise by 3.5.
        sem = torch.zeros(64, 64, dtype=torch.long)
        for label in range(1, 2 if rank == 0 else 5):
            sem[label * 8:(label + 1) * 8] = label
        losses = head.loss(random_feats(batch=1), [sample_with_gt(sem)], None)
        results[rank] = float(losses['num_masks'])
    finally:
        dist.destroy_process_group()


def test_num_masks_is_averaged_over_processes():
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_worker, args=(2, 29531, results), nprocs=2, join=True)
        assert dict(results) == {0: 3.5, 1: 3.5}
