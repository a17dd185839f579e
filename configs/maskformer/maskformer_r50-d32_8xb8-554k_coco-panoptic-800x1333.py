# COCO panoptic, R50 + 6-layer encoder pixel decoder (facebookresearch/MaskFormer
# configs/coco-panoptic/maskformer_panoptic_R50_bs64_554k.yaml): batch 64 (8 GPUs × 8), 554,400
# iterations, lr ×0.1 at 369,600 (detectron2's default WarmupMultiStepLR; its 10-iteration warm-up
# has factor 1.0, i.e. none), thresholds object 0.8 / overlap 0.8. Images are not padded to a
# multiple of 32 ("COCO model should not pad image", MASK_FORMER.SIZE_DIVISIBILITY 0): a batch is
# padded to its largest image only. Paper: 46.5 PQ.
_base_ = [
    '../_base_/models/maskformer_r50-d32-encoder.py', '../_base_/datasets/coco_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_adamw_160k.py'
]
max_iters = 554400
model = dict(
    data_preprocessor=dict(size=None, size_divisor=1, test_cfg=None),
    decode_head=dict(
        num_classes=133,
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8)))
param_scheduler = [
    dict(type='MultiStepLR', milestones=[369600], gamma=0.1, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=50000)
default_hooks = dict(checkpoint=dict(interval=50000))
# Test-time augmentation of panoptic outputs is not part of the official code.
tta_model = None
