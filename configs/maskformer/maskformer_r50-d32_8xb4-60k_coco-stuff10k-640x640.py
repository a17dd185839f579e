# COCO-Stuff-10k, 171 classes, R50 (facebookresearch/MaskFormer
# configs/coco-stuff-10k-171/maskformer_R50_bs32_60k.yaml): 640×640 crops, batch 32 (8 GPUs × 4),
# 60k iterations, AdamW as ADE20K. Paper: 37.1 mIoU s.s., 38.9 m.s.+flip.
_base_ = [
    '../_base_/models/maskformer_r50-d32.py', '../_base_/datasets/coco-stuff10k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_adamw_160k.py'
]
max_iters = 60000
model = dict(data_preprocessor=dict(size=(640, 640)), decode_head=dict(num_classes=171))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=5000)
default_hooks = dict(checkpoint=dict(interval=5000))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
