# The runtime settings of every config here: mmseg's default runtime. This project's hooks
# (SafeCheckpointHook, RandomStateHook, DataCheckHook) are default hooks, set in default_hooks.py,
# which the schedules inherit.
_base_ = ['mmseg::_base_/default_runtime.py']
