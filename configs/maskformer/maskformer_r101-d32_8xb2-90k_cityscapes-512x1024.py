# Cityscapes, 19 classes, R101 (facebookresearch/MaskFormer
# configs/cityscapes-19/maskformer_R101_bs16_90k.yaml; the zoo has no R50 Cityscapes model):
# 512×1024 crops, batch 16 (8 GPUs × 2), 90k iterations. Paper: 78.5 mIoU s.s., 80.3 m.s.+flip.
_base_ = [
    '../_base_/models/maskformer_r50-d32.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_adamw_160k.py'
]
max_iters = 90000
model = dict(
    data_preprocessor=dict(size=(512, 1024)),
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')),
    decode_head=dict(num_classes=19))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=5000))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
