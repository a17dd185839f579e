"""Finds and loads the compiled ops library, on first use.

The library built ahead of time (``mmseg_maskformer._C``, ``pip install -e . --no-build-isolation``)
is used when it loads. When it is missing (a plain ``pip install``) or fails to load (e.g. built
against another torch), the shipped sources are compiled into a per-user cache
(:mod:`._jit`). ``MMSEG_MASKFORMER_NO_EXTENSION=1`` skips both: every op runs its reference.
"""
import importlib.machinery
import os
from typing import FrozenSet, Optional, Tuple

import torch

BUILD_HINT = ('build it with `pip install -e . --no-build-isolation` from the repository root '
              '(CUDA kernels are compiled when a CUDA toolkit and a CUDA build of torch are '
              'present; FORCE_CUDA=1 compiles them without a visible GPU), or let it compile on '
              'first use (needs ninja and a C++ compiler)')

# Probed for kernels per dispatch key; every op registers its kernels in the same files.
_PROBE_OP = 'mmseg_maskformer::sigmoid_focal_dice_loss'
_DISPATCH_KEYS = {'cpu': 'CPU', 'cuda': 'CUDA', 'meta': 'Meta'}

# (why the library is not loaded, or None; device types with kernels), resolved on first use.
_state: Optional[Tuple[Optional[str], FrozenSet[str]]] = None


def _load_prebuilt() -> Optional[str]:
    """Loads ``mmseg_maskformer._C`` and returns None, or returns why it could not.

    Looked for next to the package's own modules only: an editable install's import hook would
    otherwise find the library of another copy of the package."""
    package_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [os.path.join(package_dir, '_C' + suffix)
             for suffix in importlib.machinery.EXTENSION_SUFFIXES]
    path = next((p for p in paths if os.path.exists(p)), None)
    if path is None:
        return 'mmseg_maskformer._C was not built'
    try:
        torch.ops.load_library(path)
    except (OSError, RuntimeError) as exc:  # e.g. built against another torch
        return f'{path} could not be loaded: {exc}'
    return None


def _load() -> Optional[str]:
    if os.environ.get('MMSEG_MASKFORMER_NO_EXTENSION', '0') == '1':
        return 'disabled by MMSEG_MASKFORMER_NO_EXTENSION=1'
    prebuilt_error = _load_prebuilt()
    if prebuilt_error is None:
        return None
    from ._jit import build_and_load
    return build_and_load(prebuilt_error)


def _resolve() -> Tuple[Optional[str], FrozenSet[str]]:
    global _state
    if _state is None:
        error = _load()
        if error is None:
            from . import _meta  # noqa: F401  fake kernels and autograd of the loaded ops
        # Resolved once: a lookup of this frozenset stays traceable by torch.compile where the
        # dispatcher query would break the graph.
        devices = frozenset() if error is not None else frozenset(
            device for device, key in _DISPATCH_KEYS.items()
            if torch._C._dispatch_has_kernel_for_dispatch_key(_PROBE_OP, key))
        _state = (error, devices)
    return _state


def load_error() -> Optional[str]:
    """Why the compiled ops are not available, or None when they are (loads them on first call)."""
    return _resolve()[0]


def supported_devices() -> FrozenSet[str]:
    """Device types the compiled ops have kernels for (empty without the library)."""
    return _resolve()[1]


def extension_available() -> bool:
    """True when the compiled C++/CUDA ops are loaded (loading, or compiling, them if needed)."""
    return load_error() is None


def require_extension() -> None:
    error = load_error()
    if error is not None:
        raise RuntimeError(f'The compiled mmseg_maskformer ops are not available ({error}); '
                           f'{BUILD_HINT}, or use mmseg_maskformer.ops.reference.')
