"""Loading mmengine checkpoints on torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default; mmengine 0.10.7 calls ``torch.load``
without the argument, and its own checkpoints (``message_hub`` with ``HistoryBuffer``, numpy
scalars) then fail to load: ``load_from``, ``--resume`` and ``tools/test.py CKPT`` all break.
Here mmengine's loader for local paths is replaced by one that loads with ``weights_only=False``.
That unpickles arbitrary objects, so it is only for local files the user trusts (their own
training output); URLs keep torch's safe default.
"""
import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def _load_trusted_local_checkpoint(filename: str, map_location=None):
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


def trust_local_checkpoints() -> None:
    """Register the local-file loader above with mmengine (idempotent)."""
    CheckpointLoader.register_scheme(prefixes='', force=True)(_load_trusted_local_checkpoint)
