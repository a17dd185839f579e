# COCO panoptic, R50 (facebookresearch/Mask2Former
# configs/coco/panoptic-segmentation/maskformer2_R50_bs16_50ep.yaml and
# Base-COCO-PanopticSegmentation.yaml): frozen BatchNorm, 100 queries (NUM_OBJECT_QUERIES 100),
# LSJ 1024×1024 crops (see ../_base_/datasets/coco_panoptic_lsj.py), batch 16 (8 GPUs × 2),
# 50 epochs = 368,750 iterations with lr ×0.1 at 327,778 and 355,092 (detectron2's default
# WarmupMultiStepLR, gamma 0.1; its 10-iteration warm-up has factor 1.0, i.e. none); panoptic
# inference with object_mask_threshold 0.8 and overlap_threshold 0.8 (MASK_FORMER.TEST); test
# images padded to a multiple of 32 (MASK_FORMER.SIZE_DIVISIBILITY 32).
# Official: 51.9 PQ (41.7 AP, 61.7 mIoU).
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/coco_panoptic_lsj.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
custom_imports = dict(
    imports=['mmseg_maskformer.models', 'mmseg_maskformer.datasets', 'mmseg_maskformer.evaluation'],
    allow_failed_imports=False)
max_iters = 368750
model = dict(
    data_preprocessor=dict(size=(1024, 1024)),
    decode_head=dict(
        num_classes=133,
        num_queries=100,
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8)))
param_scheduler = [
    dict(type='MultiStepLR', milestones=[327778, 355092], gamma=0.1, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=50000)
default_hooks = dict(checkpoint=dict(interval=50000))
# Test-time augmentation of panoptic outputs is not part of the official code.
tta_model = None
