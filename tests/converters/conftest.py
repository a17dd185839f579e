import pytest
import torch
from mmengine.registry import init_default_scope


@pytest.fixture(autouse=True)
def _mmseg_scope():
    init_default_scope('mmseg')


@pytest.fixture(autouse=True)
def _one_thread():
    # The tiny models gain nothing from intra-op threads, and on a busy machine waiting OpenMP
    # workers make their forward passes hundreds of times slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
