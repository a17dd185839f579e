"""Whether the compiled extension is required: ``MMSEG_MASKFORMER_REQUIRE_EXTENSION=1`` turns
every skip for a missing extension into a failure (``tests/conftest.py``, ``tests/ops/conftest.py``).
"""
import os

import pytest

REQUIRE_EXTENSION = os.environ.get('MMSEG_MASKFORMER_REQUIRE_EXTENSION', '0') == '1'


def skip_or_fail_without_extension(device_type: str = 'cpu') -> None:
    """Skip (or, with MMSEG_MASKFORMER_REQUIRE_EXTENSION=1, fail) unless the compiled extension
    has kernels for ``device_type``."""
    from mmseg_maskformer import ops
    from mmseg_maskformer.ops import _extension
    if not ops.extension_available():
        reason = f'compiled ops not available: {_extension.load_error()}'
    elif device_type not in _extension.supported_devices():
        reason = f'compiled ops have no {device_type} kernels'
    else:
        return
    if REQUIRE_EXTENSION:
        pytest.fail(f'{reason} (MMSEG_MASKFORMER_REQUIRE_EXTENSION=1)')
    pytest.skip(reason)
