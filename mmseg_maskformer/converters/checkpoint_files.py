"""Reading third-party checkpoint files without running code from them.

A pickle names the functions it calls while loading, so a file can run anything its author
wants. The released MaskFormer weights are ``.pkl`` files holding only numpy arrays (detectron2's
``{'model': {name: ndarray}, '__author__': ...}``) and ``.pth`` files holding tensors; each reader
below admits what those need and refuses any other global, naming it.
"""
import codecs
import collections
import importlib
import os.path as osp
import pickle
import re
from typing import Any, Dict, Tuple

import numpy as np
import torch

# numpy 2 moved ``numpy.core`` to ``numpy._core``; a pickle names the module it was written with.
_CORE = 'numpy._core' if hasattr(np, '_core') else 'numpy.core'
_MULTIARRAY = importlib.import_module(f'{_CORE}.multiarray')
_NUMERIC = importlib.import_module(f'{_CORE}.numeric')
_ALLOWED_GLOBALS: Dict[Tuple[str, str], Any] = {
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('collections', 'OrderedDict'): collections.OrderedDict,
    # Protocol-2 pickles store bytes (the arrays' buffers) as latin-1 text passed through this.
    ('_codecs', 'encode'): codecs.encode,
}
for _core in ('numpy.core', 'numpy._core'):
    # How ndarray.__reduce__ rebuilds an array (protocol 5: from an out-of-band buffer), and how
    # numpy scalars rebuild themselves.
    _ALLOWED_GLOBALS[(f'{_core}.multiarray', '_reconstruct')] = _MULTIARRAY._reconstruct
    _ALLOWED_GLOBALS[(f'{_core}.numeric', '_frombuffer')] = _NUMERIC._frombuffer
    _ALLOWED_GLOBALS[(f'{_core}.multiarray', 'scalar')] = _MULTIARRAY.scalar


class _NumpyOnlyUnpickler(pickle.Unpickler):

    def __init__(self, file, filename: str):
        # latin1: detectron2 reads its .pkl files so, for the numpy buffers of Python 2 pickles.
        super().__init__(file, encoding='latin1')
        self.filename = filename

    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f'refusing to load {self.filename}: its pickle asks for {module}.{name}, which a '
                'checkpoint of numpy arrays does not need (only numpy arrays, dtypes and scalars '
                'are allowed)') from None


def weights_only_refusal(error: pickle.UnpicklingError) -> str:
    """What ``torch.load(weights_only=True)`` refused, from its error message: the text after
    'WeightsUnpickler error:', without the advice around it (to load with weights_only=False, to
    allow-list the global, to read the documentation)."""
    message = str(error)
    found = re.search(r'WeightsUnpickler error:\s*(.*?)\s*(?:Please use|Check the documentation|$)',
                      message, re.DOTALL)
    return found.group(1) if found and found.group(1) else message


def load_checkpoint_file(path: str) -> dict:
    """Load a ``.pkl`` (pickle of numpy arrays) or ``.pth`` (tensors) checkpoint safely.

    ``.pth`` files go through ``torch.load(weights_only=True)``; ``.pkl`` files through an
    unpickler that resolves only numpy's array, dtype and scalar constructors.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the extension is neither ``.pkl`` nor ``.pth``, or the file is not a dict.
        pickle.UnpicklingError: the pickle asks for anything else; the message names it.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint file {path} does not exist')
    extension = osp.splitext(path)[1]
    if extension == '.pkl':
        with open(path, 'rb') as f:
            checkpoint = _NumpyOnlyUnpickler(f, path).load()
    elif extension in ('.pth', '.pt'):
        try:
            checkpoint = torch.load(path, map_location='cpu', weights_only=True)
        except pickle.UnpicklingError as error:
            raise pickle.UnpicklingError(
                f'refusing to load {path} with torch.load(weights_only=True): '
                f'{weights_only_refusal(error)}') from None
    else:
        raise ValueError(f'{path}: expected a .pkl (detectron2 / official MaskFormer) or .pth '
                         f'checkpoint, got extension {extension!r}')
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a checkpoint dict')
    return checkpoint
