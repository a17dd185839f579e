"""Shared fixtures of the ops tests.

Tests of the compiled ops take the ``fused`` fixture. It skips them, with the reason, when the
extension is not built (or has no kernels for the device under test), unless
``MMSEG_MASKFORMER_REQUIRE_EXTENSION=1``, in which case they fail instead (``tests/conftest.py``).
"""
import pytest
import torch

from mmseg_maskformer import ops

from extension_testing import skip_or_fail_without_extension

DEVICES = [
    'cpu',
    pytest.param('cuda', marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason='CUDA is not available')),
]


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)


@pytest.fixture
def fused(device):
    """:mod:`mmseg_maskformer.ops.fused`, when its kernels exist for ``device``."""
    skip_or_fail_without_extension(device.type)
    return ops.fused


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


# Helpers are served as fixtures: test modules then need no import path to this directory,
# whatever pytest's import mode.
@pytest.fixture
def make_targets(generator, device):
    """Random targets of a shape as 'bool', 'uint8', 'float' (hard) or 'soft' (float in [0, 1])."""

    def make(kind, shape):
        values = torch.rand(shape, generator=generator)
        out = {
            'bool': lambda: values > 0.5,
            'uint8': lambda: (values > 0.5).to(torch.uint8),
            'float': lambda: (values > 0.5).float(),
            'soft': lambda: values,
        }[kind]()
        return out.to(device)

    return make


@pytest.fixture
def randn(generator, device):
    """Seeded normal samples drawn in float64 on the CPU, then cast and moved."""

    def make(shape, dtype=torch.float32, scale=1.0):
        values = scale * torch.randn(shape, generator=generator, dtype=torch.float64)
        return values.to(device=device, dtype=dtype)

    return make


@pytest.fixture
def by_position():
    """(N, P, 2) points sorted per mask by x, then y: compares point sets (the selections return
    them in no particular order)."""

    def sort(points):
        for coordinate in (1, 0):  # stable sorts: by y, then by x
            order = points[..., coordinate].argsort(dim=1, stable=True)
            points = torch.gather(points, 1, order[..., None].expand(-1, -1, 2))
        return points

    return sort
