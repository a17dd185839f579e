"""Fixtures for the tools' tests: tiny Shapes data and random-weight checkpoints of the configs.

``tools/`` is put on ``sys.path`` so that the tests call each tool's functions in-process.
"""
import os
import sys

import pytest

from checkpoint_testing import random_checkpoint
from cli_testing import PANOPTIC_CONFIG, REPO, SEMANTIC_CONFIG
from mmseg_maskformer.datasets.shapes import generate_shapes_dataset

sys.path.insert(0, os.path.join(REPO, 'tools'))


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
