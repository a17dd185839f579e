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


@pytest.fixture(scope='session')
def trained_shapes(tmp_path_factory):
    """``(data_root, work_dir, checkpoint)``: tiny Shapes data (8 training, 4 validation images
    of 64²) and the tiny config trained for 3 iterations by ``tools/train.py``, made once per
    test run. Under pytest-xdist the workers share pytest's base temporary directory; a file lock
    lets the first one train and the others wait for it. Tests copy what they modify."""
    from filelock import FileLock

    from cli_testing import CONFIG, run, tiny_options
    from mmseg_maskformer.datasets.shapes import generate_shapes_dataset

    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'):
        base = base.parent
    root = base / 'trained_shapes'
    with FileLock(str(base / 'trained_shapes.lock')):
        if not (root / 'done').exists():
            data_root, work_dir = root / 'data', root / 'work'
            generate_shapes_dataset(str(data_root), num_train=8, num_val=4, size=64, seed=0)
            run(['tools/train.py', CONFIG, '--work-dir', str(work_dir), '--cfg-options'] +
                tiny_options(str(data_root), 3))
            (root / 'done').write_text('')
    return str(root / 'data'), str(root / 'work'), str(root / 'work' / 'iter_3.pth')
