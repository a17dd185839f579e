# COCO panoptic, Swin-T (facebookresearch/Mask2Former
# configs/coco/panoptic-segmentation/swin/maskformer2_swin_tiny_bs16_50ep.yaml): the R50 COCO
# panoptic recipe (100 queries, LSJ 1024, batch 16, 368,750 iterations, steps at 327,778 and
# 355,092, thresholds 0.8 / 0.8) with the Swin-T backbone (window 7, drop path 0.3, ImageNet-1k
# weights). Official: 53.2 PQ (43.3 AP, 63.2 mIoU).
_base_ = [
    '../_base_/models/mask2former_swin-t.py', '../_base_/datasets/coco_panoptic_lsj.py',
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
