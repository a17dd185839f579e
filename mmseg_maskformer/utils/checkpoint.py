"""Safe loading of checkpoints through mmengine, for every scheme it reads.

A pickle names the functions it calls while loading, so a ``.pth`` file can run any code its
author wants. torch >= 2.6 loads with ``weights_only=True`` by default: its unpickler builds
tensors, containers and an allow-list of globals only. mmengine 0.10.7 keeps two gaps:

- URLs (``http(s)://``, and ``torchvision://``, ``open-mmlab://``, ``mmcls://`` which resolve to
  URLs) go through ``torch.hub.load_state_dict_from_url``, whose ``weights_only`` defaults to
  False: a file served over HTTP runs code while a config's weights load.
- every checkpoint mmengine's ``Runner`` writes, hence mmseg's, mmdet's and mmpretrain's released
  ones, holds the message hub's ``HistoryBuffer`` objects, which safe loading refuses:
  ``HistoryBuffer.__getstate__`` stores the class's statistics methods, which pickle (protocol 2,
  ``torch.save``'s default) writes as ``builtins.getattr(HistoryBuffer, 'min')``.

:func:`install_safe_checkpoint_loading` (run when ``mmseg_maskformer.models`` is imported, as
every config does) registers loaders with mmengine's ``CheckpointLoader`` for local files and for
each of those schemes. Each loads with torch's ``weights_only`` unpickler and, for the duration
of that one load, admits exactly what mmengine pickles besides tensors: ``HistoryBuffer``
(rebuilt only from the state mmengine writes), ``getattr`` restricted to ``HistoryBuffer`` and its
four built-in statistics methods (``min``, ``max``, ``current``, ``mean``), and numpy arrays,
scalars and dtypes (the buffers' history). Any other global is refused with :class:`UntrustedCheckpointError` naming it.
Nothing is added to torch's allow-list outside those loads.

Opt in to full unpickling only for files you trust: ``--trust-checkpoint`` of the tools trusts
the file(s) named on that command line (:func:`trust_checkpoint`); the environment variable
``MMSEG_MASKFORMER_TRUST_CHECKPOINTS=1`` (or ``true`` / ``yes``) trusts every file the process
and its children load.
"""
import contextlib
import logging
import os
import os.path as osp
import pickle
import re
from typing import Any, Callable, Iterator, List, Set, Tuple, Union

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from ..converters.checkpoint_files import weights_only_refusal

TRUST_ENV = 'MMSEG_MASKFORMER_TRUST_CHECKPOINTS'
TRUE_VALUES = ('1', 'true', 'yes')
TRUST_CHECKPOINT_HELP = (
    'load the checkpoint file(s) named on this command line (the checkpoint argument, load_from, '
    'the --resume checkpoint) with full unpickling, which can run code stored in the file: only '
    'for files you trust. Other files (pretrained backbones...) stay under safe loading.')

_trusted_files: Set[str] = set()

# The statistics methods HistoryBuffer registers for itself (mmengine 0.10.7,
# HistoryBuffer._set_default_statistics); a pickled buffer names them through getattr.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
_HISTORY_BUFFER_PATH = 'mmengine.logging.history_buffer.HistoryBuffer'


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint holds an object that safe (``weights_only``) loading does not build."""


def trusted_loading_enabled() -> bool:
    """Whether the environment opts every load in to full unpickling (``1``/``true``/``yes``)."""
    return os.environ.get(TRUST_ENV, '').strip().lower() in TRUE_VALUES


def _checkpoint_key(filename: str) -> str:
    if '://' in filename:
        return filename
    return osp.abspath(osp.expanduser(filename))


def trust_checkpoint(filename: str) -> None:
    """Load ``filename`` (a path or URL) with full unpickling in this process only."""
    _trusted_files.add(_checkpoint_key(filename))


def is_trusted(filename: str) -> bool:
    return trusted_loading_enabled() or _checkpoint_key(filename) in _trusted_files


# What HistoryBuffer.__getstate__ returns: its instance attributes plus the statistics methods.
_HISTORY_BUFFER_STATE = {'max_length', '_log_history', '_count_history', 'statistics_methods'}


class _HistoryBufferReconstruction(HistoryBuffer):
    """What safe loading builds for a pickled ``HistoryBuffer``: the state must be exactly what
    ``HistoryBuffer.__getstate__`` writes (an int length, the logged values and counts as
    arrays, the built-in statistics methods under their own names), then the object becomes a
    plain ``HistoryBuffer``. mmengine's ``__setstate__`` alone would put any statistics method a
    file names into the class-wide registry and any attribute onto the buffer."""

    def __setstate__(self, state):
        if not isinstance(state, dict) or set(state) - _HISTORY_BUFFER_STATE:
            found = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise UntrustedCheckpointError(f'a HistoryBuffer with the state {found}; mmengine '
                                           f'writes {sorted(_HISTORY_BUFFER_STATE)}')
        methods = state.get('statistics_methods', {})
        if not isinstance(methods, dict) or any(
                name not in HISTORY_BUFFER_STATISTICS or method is not getattr(HistoryBuffer, name)
                for name, method in methods.items()):
            raise UntrustedCheckpointError(
                f'HistoryBuffer statistics methods {methods!r}; safe loading allows only '
                f'HistoryBuffer\'s own {HISTORY_BUFFER_STATISTICS}')
        if not isinstance(state.get('max_length', 0), int) or not all(
                isinstance(state.get(key, np.zeros(0)), np.ndarray)
                for key in ('_log_history', '_count_history')):
            raise UntrustedCheckpointError('a HistoryBuffer whose length is not an int or whose '
                                           'history is not numpy arrays')
        self.__class__ = HistoryBuffer
        HistoryBuffer.__setstate__(self, state)


def _history_buffer_statistic(owner: Any, name: str) -> Callable:
    """``getattr`` as mmengine's pickled ``HistoryBuffer`` uses it, and for nothing else."""
    if owner is _HistoryBufferReconstruction and name in HISTORY_BUFFER_STATISTICS:
        return getattr(HistoryBuffer, name)
    shown = 'HistoryBuffer' if owner is _HistoryBufferReconstruction else repr(owner)
    raise UntrustedCheckpointError(
        f'the checkpoint calls builtins.getattr({shown}, {name!r}); safe loading allows getattr '
        f'only for the statistics methods {HISTORY_BUFFER_STATISTICS} of mmengine\'s '
        'HistoryBuffer')


def _numpy_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    """What pickled numpy arrays, scalars and dtypes need, under the module names of numpy 1
    (``numpy.core``) and 2 (``numpy._core``), since a pickle names the one it was written with."""
    core = np._core if hasattr(np, '_core') else np.core
    found = [np.ndarray, np.dtype]
    for module in ('numpy.core', 'numpy._core'):
        found += [(core.multiarray._reconstruct, f'{module}.multiarray._reconstruct'),
                  (core.multiarray.scalar, f'{module}.multiarray.scalar')]
    # A dtype is rebuilt as numpy.dtype(...) and then set up by its own class (BUILD).
    found += sorted({type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGUS'}, key=str)
    return found


def _mmengine_checkpoint_globals() -> List[Union[Callable, Tuple[Callable, str]]]:
    return [(_HistoryBufferReconstruction, _HISTORY_BUFFER_PATH),
            (_history_buffer_statistic, 'builtins.getattr'), *_numpy_globals()]


@contextlib.contextmanager
def _mmengine_globals_allowed() -> Iterator[None]:
    # Only what is not allowed already is added, and only that is removed afterwards:
    # torch.serialization.safe_globals removes its globals on exit even if they were allowed
    # before it.
    allowed = set(torch.serialization.get_safe_globals())
    missing = [entry for entry in _mmengine_checkpoint_globals() if entry not in allowed]
    with torch.serialization.safe_globals(missing):
        yield


def _refusal_reason(error: pickle.UnpicklingError) -> str:
    reason = weights_only_refusal(error)
    found = re.search(r'GLOBAL (\S+)', reason)
    return f'the global {found.group(1)}' if found else reason


def load_checkpoint_safely(source, filename: str, map_location=None, trusted: bool = None) -> Any:
    """``torch.load`` a checkpoint (``source``: a path or a file object; ``filename``: the path
    or URL the user named) with safe unpickling, unless the file is trusted (by default:
    :func:`is_trusted` of ``filename``).

    Raises:
        UntrustedCheckpointError: the file holds a global that safe loading does not build; the
            message names it and the opt-in.
    """
    if trusted if trusted is not None else is_trusted(filename):
        return torch.load(source, map_location=map_location, weights_only=False)
    try:
        with _mmengine_globals_allowed():
            return torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        raise UntrustedCheckpointError(
            f'{filename} holds {_refusal_reason(error)}, which safe checkpoint loading (torch.load '
            f'with weights_only=True, plus the numpy arrays and mmengine HistoryBuffer objects of '
            f'OpenMMLab checkpoints) does not build: unpickling it could run code. If you trust '
            f'this file, pass --trust-checkpoint (tools/train.py, test.py, infer.py, '
            f'visualize.py, export_onnx.py) or set {TRUST_ENV}=1 in the environment.') from None


def load_from_local(filename: str, map_location=None) -> Any:
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_safely(filename, filename, map_location)


def _download(url: str, model_dir=None, progress: bool = False) -> str:
    """The local copy of ``url`` in torch.hub's cache (``<hub dir>/checkpoints``, where
    ``torch.hub.load_state_dict_from_url`` keeps it), downloaded if it is not there."""
    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(url.split('?')[0]))
    if not osp.exists(cached):
        print_log(f'Downloading {url} to {cached}', logger='current')
        torch.hub.download_url_to_file(url, cached, progress=progress)
    return cached


def load_from_http(filename: str, map_location=None, model_dir=None,
                   progress: bool = False, trusted_as: str = None) -> Any:
    """mmengine's ``load_from_http`` (local rank 0 downloads first), loading safely.
    ``trusted_as``: the name the user gave (``torchvision://...``) when it resolved to this URL."""
    rank, world_size = get_dist_info()
    if rank == 0:
        cached = _download(filename, model_dir, progress)
    if world_size > 1:
        torch.distributed.barrier()
        if rank > 0:
            cached = _download(filename, model_dir, progress)
    trusted = is_trusted(filename) or (trusted_as is not None and is_trusted(trusted_as))
    return load_checkpoint_safely(cached, filename, map_location, trusted)


def load_from_torchvision(filename: str, map_location=None) -> Any:
    if filename.startswith('modelzoo://'):
        print_log('The URL scheme of "modelzoo://" is deprecated, please use "torchvision://" '
                  'instead', logger='current', level=logging.WARNING)
    model_name = filename.split('://', 1)[1]
    url = mmengine_checkpoint.get_torchvision_models()[model_name]
    return load_from_http(url, map_location=map_location, trusted_as=filename)


def load_from_openmmlab(filename: str, map_location=None) -> Any:
    prefix, model_name = filename.split('://', 1)
    deprecated = mmengine_checkpoint.get_deprecated_model_names()
    if model_name in deprecated:
        print_log(f'{prefix}://{model_name} is deprecated in favor of '
                  f'{prefix}://{deprecated[model_name]}', logger='current',
                  level=logging.WARNING)
        model_name = deprecated[model_name]
    model_url = mmengine_checkpoint.get_external_models()[model_name]
    if model_url.startswith(('http://', 'https://')):
        return load_from_http(model_url, map_location=map_location, trusted_as=filename)
    local = osp.join(mmengine_checkpoint._get_mmengine_home(), model_url)
    if not osp.isfile(local):
        raise FileNotFoundError(f'{local} can not be found.')
    return load_checkpoint_safely(local, local, map_location,
                                  is_trusted(local) or is_trusted(filename))


def load_from_mmcls(filename: str, map_location=None) -> Any:
    url = mmengine_checkpoint.get_mmcls_models()[filename[len('mmcls://'):]]
    checkpoint = load_from_http(url, map_location=map_location, trusted_as=filename)
    return mmengine_checkpoint._process_mmcls_checkpoint(checkpoint)


SAFE_LOADERS = {
    '': load_from_local,
    ('http://', 'https://'): load_from_http,
    ('modelzoo://', 'torchvision://'): load_from_torchvision,
    ('open-mmlab://', 'openmmlab://'): load_from_openmmlab,
    'mmcls://': load_from_mmcls,
}


def install_safe_checkpoint_loading() -> None:
    """Register the safe loaders with mmengine's ``CheckpointLoader`` (idempotent). It changes
    nothing for code that loads checkpoints without mmengine."""
    for prefixes, loader in SAFE_LOADERS.items():
        CheckpointLoader.register_scheme(prefixes=prefixes, loader=loader, force=True)
