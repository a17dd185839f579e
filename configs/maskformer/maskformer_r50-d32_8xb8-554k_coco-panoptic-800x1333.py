# COCO panoptic, R50 + 6-layer encoder pixel decoder (paper: 46.5 PQ): batch 64 (8 GPUs × 8),
# 554k iterations, thresholds object 0.8 / overlap 0.8.
_base_ = [
    '../_base_/models/maskformer_r50-d32-encoder.py', '../_base_/datasets/coco_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_adamw_160k.py'
]
max_iters = 554000
model = dict(
    data_preprocessor=dict(size=None, size_divisor=32),
    decode_head=dict(
        num_classes=133,
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8)))
param_scheduler = [dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(max_iters=max_iters, val_interval=50000)
default_hooks = dict(checkpoint=dict(interval=50000))
