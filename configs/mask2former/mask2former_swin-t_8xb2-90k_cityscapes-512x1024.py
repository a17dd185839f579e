# Cityscapes, Swin-T (facebookresearch/Mask2Former
# configs/cityscapes/semantic-segmentation/swin/maskformer2_swin_tiny_bs16_90k.yaml): the R50
# Cityscapes recipe (512×1024 crops, batch 16, 90k iterations) with the Swin-T backbone (window 7,
# drop path 0.3, ImageNet-1k weights). Official: 82.1 mIoU s.s., 83.0 m.s.+flip.
_base_ = [
    '../_base_/models/mask2former_swin-t.py', '../_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
max_iters = 90000
model = dict(data_preprocessor=dict(size=(512, 1024)), decode_head=dict(num_classes=19))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=5000))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
