# The runtime settings of every config here: mmseg's default runtime, which this project's
# hooks extend: SafeCheckpointHook writes checkpoints that load with weights_only=True;
# RandomStateHook saves the RNG states in checkpoints so that --resume repeats the uninterrupted
# run; DataCheckHook stops at empty datasets and bad ground truth, naming the file.
_base_ = ['mmseg::_base_/default_runtime.py']
custom_hooks = [
    dict(type='mmseg_maskformer.SafeCheckpointHook'),
    dict(type='mmseg_maskformer.RandomStateHook'),
    dict(type='mmseg_maskformer.DataCheckHook'),
]
