"""MMEngine registries of the ``mmseg_maskformer`` scope.

They are children of MMSegmentation's registries, so an mmseg config reaches our modules as
``type='mmseg_maskformer.MaskFormerHead'`` without clashing with mmseg's own ``MaskFormerHead``,
and our modules can build any mmseg/mmengine module by its plain name. MMEngine imports this
module by itself when it meets the ``mmseg_maskformer.`` prefix; ``locations`` then imports the
modules that register into each registry.
"""
from mmengine.registry import Registry
from mmseg.registry import HOOKS as MMSEG_HOOKS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS
from mmseg.registry import TASK_UTILS as MMSEG_TASK_UTILS

SCOPE = 'mmseg_maskformer'

MODELS = Registry('model', parent=MMSEG_MODELS, scope=SCOPE, locations=['mmseg_maskformer.models'])
TASK_UTILS = Registry('task util', parent=MMSEG_TASK_UTILS, scope=SCOPE,
                      locations=['mmseg_maskformer.models'])
HOOKS = Registry('hook', parent=MMSEG_HOOKS, scope=SCOPE, locations=['mmseg_maskformer.engine'])
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=MMSEG_OPTIM_WRAPPERS, scope=SCOPE,
                          locations=['mmseg_maskformer.engine'])
