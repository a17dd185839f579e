import pytest
from mmengine.registry import init_default_scope

import mmseg_maskformer.models  # noqa: F401  (registers the scope)


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope("mmseg")
