# AdamW with warm-up and poly decay for training the tiny models from scratch on Shapes.
_base_ = '../default_hooks.py'  # this project's hooks
max_iters = 2000
# The optimiser wrapper skips no update by default: a non-finite loss or gradient stops training
# with the batch's file names (max_consecutive_skips=N tolerates N non-finite batches in a row).
optim_wrapper = dict(
    type='mmseg_maskformer.NonFiniteGuardOptimWrapper',
    max_consecutive_skips=0,
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=1e-4),
    clip_grad=dict(max_norm=0.01, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=100),
    dict(type='PolyLR', eta_min=0, power=0.9, begin=100, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
