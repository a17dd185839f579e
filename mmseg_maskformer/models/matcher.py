"""Registers the core Hungarian matcher with MMEngine (``TASK_UTILS``)."""
from ..core.matching import HungarianMatcher
from ..registry import TASK_UTILS

TASK_UTILS.register_module(name='HungarianMatcher', module=HungarianMatcher)
