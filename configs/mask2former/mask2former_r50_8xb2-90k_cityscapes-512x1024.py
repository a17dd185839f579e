# Cityscapes, 19 classes, R50 (facebookresearch/Mask2Former
# configs/cityscapes/semantic-segmentation/maskformer2_R50_bs16_90k.yaml and
# Base-Cityscapes-SemanticSegmentation.yaml): RESNETS.NORM "SyncBN" ("use syncbn for cityscapes
# dataset": trained, synchronised BatchNorm); training shortest edge int(x * 0.1 * 1024),
# longest <= 4096, 512×1024 crops, batch 16 (8 GPUs × 2), 90k iterations, poly decay; test
# shortest edge 1024, longest <= 2048; TEST.AUG 512..1792 (<= 4096) with flip.
# Official: 79.4 mIoU s.s., 82.2 m.s.+flip.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
max_iters = 90000
model = dict(
    data_preprocessor=dict(size=(512, 1024)),
    backbone=dict(norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    decode_head=dict(num_classes=19))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=5000))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
