"""Shared pytest set-up.

The mmsegmentation wheel installs a top-level package named ``tests``; our test folders have no
``__init__.py`` (rootdir-relative module names), so pytest never imports that package instead.
"""
import os

import pytest
import torch

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


# The tests use tiny tensors: one intra-op thread avoids oversubscribing the cores when pytest,
# its subprocesses and DDP workers run at once.
torch.set_num_threads(1)
