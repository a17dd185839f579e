"""Safe loading of mmengine checkpoints on torch >= 2.6.

torch 2.6 made ``torch.load(weights_only=True)`` the default: the unpickler then builds only
tensors, containers and the globals on an allow-list, so a downloaded file cannot run code.
Checkpoints written with this project's ``SafeCheckpointHook`` (every config has it) hold, besides
those, numpy arrays and scalars (the message hub's logged history and runtime information): exactly
those numpy globals are added to torch's allow-list here, and mmengine's loader for local files is
replaced by one that loads with ``weights_only=True`` and, when a file holds anything else, raises
an error naming the global met and the opt-in for files the user trusts: the environment variable
``MMSEG_MASKFORMER_TRUST_CHECKPOINTS=1`` (which ``--trust-checkpoint`` of ``tools/train.py`` /
``tools/test.py`` sets). Other schemes (URLs, ``open-mmlab://``...) keep mmengine's loaders, which
use torch's safe default and the same allow-list.
"""
import os
import os.path as osp
import pickle
import re

import numpy as np
import torch
from mmengine.runner.checkpoint import CheckpointLoader

TRUST_ENV = 'MMSEG_MASKFORMER_TRUST_CHECKPOINTS'

# What a checkpoint written by mmengine 0.10.7's Runner with SafeCheckpointHook holds besides
# tensors and containers: numpy arrays (the logged scalars' history) and numpy scalars (runtime
# info). Found by listing the globals torch's unpickler rejects in the checkpoints tools/train.py
# writes (tests/integration/test_reliability_cli.py keeps checking it).
SAFE_GLOBALS = [
    np.ndarray,
    np.dtype,
    np._core.multiarray._reconstruct,
    np._core.multiarray.scalar,
    type(np.dtype(np.float64)),
    type(np.dtype(np.float32)),
    type(np.dtype(np.int64)),
    type(np.dtype(np.int32)),
    type(np.dtype(np.uint32)),
    type(np.dtype(np.bool_)),
]


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds an object that safe (``weights_only``) loading does not build."""


def trusted_loading_enabled() -> bool:
    return os.environ.get(TRUST_ENV, '') not in ('', '0')


def load_local_checkpoint(filename: str, map_location=None):
    """``torch.load`` a local checkpoint, safely unless the user opted in to trusting files."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if trusted_loading_enabled():
        return torch.load(filename, map_location=map_location, weights_only=False)
    # Again at every load: a torch.serialization.safe_globals context anywhere in the process
    # removes its globals on exit, even those that were allowed before it.
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r'GLOBAL (\S+)', str(error))
        what = f'the global {found.group(1)}' if found else 'an object'
        raise UntrustedCheckpointError(
            f'{filename} holds {what}, which safe checkpoint loading (torch.load with '
            f'weights_only=True and the allow-list of mmseg_maskformer.utils.checkpoint) does not '
            f'build: unpickling it could run code (checkpoints written by mmengine without '
            f'mmseg_maskformer.SafeCheckpointHook hold HistoryBuffer objects, which pickle '
            f'builtins.getattr). If you trust this file, load it with '
            f'{TRUST_ENV}=1 in the environment or --trust-checkpoint (tools/train.py, '
            f'tools/test.py).') from error


def install_safe_checkpoint_loading() -> None:
    """Allow-list the globals of mmengine's checkpoints and register the safe local loader with
    mmengine (idempotent). It only widens what loads safely; it never turns safe loading off."""
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_local_checkpoint)
