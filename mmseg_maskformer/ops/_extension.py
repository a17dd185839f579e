"""Finds and loads the compiled ops library ``mmseg_maskformer._C``, if it was built."""
import importlib.util
import os
from typing import Optional

import torch

BUILD_HINT = ('build it with `pip install -e . --no-build-isolation` from the repository root '
              '(CUDA kernels are compiled when a CUDA toolkit and a CUDA build of torch are '
              'present; FORCE_CUDA=1 compiles them without a visible GPU)')

# Probed for kernels per dispatch key; every op registers its kernels in the same files.
_PROBE_OP = 'mmseg_maskformer::sigmoid_focal_dice_loss'
_DISPATCH_KEYS = {'cpu': 'CPU', 'cuda': 'CUDA', 'meta': 'Meta'}


def _load() -> Optional[str]:
    """Loads the library and returns None, or returns why it could not be loaded."""
    if os.environ.get('MMSEG_MASKFORMER_NO_EXTENSION', '0') == '1':
        return 'disabled by MMSEG_MASKFORMER_NO_EXTENSION=1'
    spec = importlib.util.find_spec('mmseg_maskformer._C')
    if spec is None or spec.origin is None:
        return 'mmseg_maskformer._C was not found'
    try:
        torch.ops.load_library(spec.origin)
    except (OSError, RuntimeError) as exc:  # e.g. built against another torch
        return f'{spec.origin} could not be loaded: {exc}'
    return None


LOAD_ERROR = _load()

if LOAD_ERROR is None:
    from . import _meta  # noqa: F401  fake kernels and autograd of the loaded ops

# Device types with compiled kernels, resolved once: a dict lookup stays traceable by
# torch.compile where the dispatcher query would break the graph.
SUPPORTED_DEVICES = frozenset() if LOAD_ERROR is not None else frozenset(
    device for device, key in _DISPATCH_KEYS.items()
    if torch._C._dispatch_has_kernel_for_dispatch_key(_PROBE_OP, key))


def extension_available() -> bool:
    """True when the compiled C++/CUDA ops are loaded."""
    return LOAD_ERROR is None


def require_extension() -> None:
    if LOAD_ERROR is not None:
        raise RuntimeError(f'The compiled mmseg_maskformer ops are not available ({LOAD_ERROR}); '
                           f'{BUILD_HINT}, or use mmseg_maskformer.ops.reference.')
