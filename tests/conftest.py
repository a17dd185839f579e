"""Shared pytest set-up.

The mmsegmentation wheel installs a top-level package named ``tests``; our test folders have no
``__init__.py`` (rootdir-relative module names), so pytest never imports that package instead.

Tests that need the compiled extension carry ``@pytest.mark.needs_extension`` (or, in
``tests/ops``, the ``fused`` fixture): they are skipped, with the reason, when it is not built,
unless ``MMSEG_MASKFORMER_REQUIRE_EXTENSION=1`` (what ``make test`` and CI set), in which case they
fail instead.
"""
import os

import pytest
import torch

from extension_testing import skip_or_fail_without_extension


def pytest_configure(config):
    config.addinivalue_line('markers', 'needs_extension: the test runs the compiled extension')


def pytest_runtest_setup(item):
    if item.get_closest_marker('needs_extension') is not None:
        skip_or_fail_without_extension()


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


# The tests use tiny tensors: one intra-op thread avoids oversubscribing the cores when pytest,
# its subprocesses and DDP workers run at once.
torch.set_num_threads(1)
