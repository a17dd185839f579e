"""Layer 3: training-loop hooks and optimizer wrappers (registered in the ``mmseg_maskformer``
scope: a config names them ``type='mmseg_maskformer.RandomStateHook'`` etc.)."""
from .hooks import DataCheckHook, RandomStateHook, SafeCheckpointHook
from .optim_wrapper import (NonFiniteGuardAmpOptimWrapper, NonFiniteGuardOptimWrapper,
                            NonFiniteUpdateError)

__all__ = [
    'DataCheckHook', 'NonFiniteGuardAmpOptimWrapper', 'NonFiniteGuardOptimWrapper',
    'NonFiniteUpdateError', 'RandomStateHook', 'SafeCheckpointHook'
]
