"""Fixtures for the tools' tests: tiny Shapes data and random-weight checkpoints of the configs.

``tools/`` is put on ``sys.path`` so that the tests call each tool's functions in-process.
"""
import os
import sys

import pytest

from checkpoint_testing import random_checkpoint
from mmseg_maskformer.datasets.shapes import generate_shapes_dataset

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, 'tools'))
SEMANTIC_CONFIG = os.path.join(
    REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-128x128.py')
PANOPTIC_CONFIG = os.path.join(
    REPO, 'configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-panoptic-128x128.py')


@pytest.fixture(scope='session')
def shapes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('shapes')
    generate_shapes_dataset(str(root), num_train=4, num_val=4, size=64, seed=0)
    return str(root)


@pytest.fixture(scope='session')
def semantic_checkpoint(tmp_path_factory):
    return random_checkpoint(SEMANTIC_CONFIG, str(tmp_path_factory.mktemp('ckpt') / 'sem.pth'))


@pytest.fixture(scope='session')
def panoptic_checkpoint(tmp_path_factory):
    return random_checkpoint(PANOPTIC_CONFIG, str(tmp_path_factory.mktemp('ckpt') / 'pan.pth'))
