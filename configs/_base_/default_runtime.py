# The runtime settings of every config here: mmseg's default runtime, which this project's
# hooks extend.
_base_ = ['mmseg::_base_/default_runtime.py']
