# The official optimisation (facebookresearch/MaskFormer configs/ade20k-150/Base-ADE20K-150.yaml
# and train_net.py build_optimizer): AdamW lr 1e-4, weight decay 1e-4, backbone lr ×0.1, no weight
# decay on normalisation layers (detectron2's SOLVER.WEIGHT_DECAY_NORM default 0.0) nor on the
# query embedding (SOLVER.WEIGHT_DECAY_EMBED 0.0), gradient clipping of the full model at L2 norm
# 0.01, poly decay (power 0.9, detectron2's WarmupPolyLR) over 160k iterations.
# A config with another length sets max_iters, param_scheduler and train_cfg again.
_base_ = '../default_hooks.py'  # this project's hooks
max_iters = 160000
# The optimiser wrapper skips no update by default: a non-finite loss or gradient stops training
# with the batch's file names (max_consecutive_skips=N tolerates N non-finite batches in a row).
optim_wrapper = dict(
    type='mmseg_maskformer.NonFiniteGuardOptimWrapper',
    max_consecutive_skips=0,
    optimizer=dict(type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.0001),
    clip_grad=dict(max_norm=0.01, norm_type=2),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        custom_keys={
            'backbone': dict(lr_mult=0.1),
            'query_embed': dict(decay_mult=0.0)
        }))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=16000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
