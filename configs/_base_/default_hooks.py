# The hooks this project adds to mmseg's default hooks, for every config here:
# SafeCheckpointHook writes checkpoints that load with weights_only=True; RandomStateHook saves
# the RNG states in checkpoints so that --resume repeats the uninterrupted run; DataCheckHook
# stops at empty datasets and bad ground truth, naming the file. All have priority VERY_HIGH and
# run right after mmengine's RuntimeInfoHook.
# They are default_hooks, which mmengine's Config merges key by key into a derived config's, not
# custom_hooks, a list that a derived config's own custom_hooks would replace. A config drops one
# by name: default_hooks = dict(data_check=None), or --cfg-options default_hooks.data_check=None
# (tools/train.py and tools/test.py remove these: mmengine's Runner takes None for its own keys
# only).
# mmengine's Config refuses a key that two _base_ files side by side define, and default_hooks
# belongs to the schedules (as in mmseg's _base_/schedules/), so the schedules inherit this file.
default_hooks = dict(
    safe_checkpoint=dict(type='mmseg_maskformer.SafeCheckpointHook'),
    random_state=dict(type='mmseg_maskformer.RandomStateHook'),
    data_check=dict(type='mmseg_maskformer.DataCheckHook'),
)
