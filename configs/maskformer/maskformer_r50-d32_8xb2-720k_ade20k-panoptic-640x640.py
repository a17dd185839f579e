# ADE20K panoptic, R50 + 6-layer encoder pixel decoder (facebookresearch/MaskFormer
# configs/ade20k-150-panoptic/maskformer_panoptic_R50_bs16_720k.yaml, which inherits the ADE20K-150
# R50 recipe): 640×640 crops, batch 16 (8 GPUs × 2), 720k iterations, poly decay, thresholds
# object 0.7 / overlap 0.8. Paper: 34.7 PQ.
_base_ = [
    '../_base_/models/maskformer_r50-d32-encoder.py', '../_base_/datasets/ade20k_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_adamw_160k.py'
]
max_iters = 720000
model = dict(
    data_preprocessor=dict(size=(640, 640)),
    decode_head=dict(
        num_classes=150,
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.7, overlap_threshold=0.8)))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=50000)
default_hooks = dict(checkpoint=dict(interval=50000))
# Test-time augmentation of panoptic outputs is not part of the official code.
tta_model = None
