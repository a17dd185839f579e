# Mapillary Vistas, 65 classes, R50 (facebookresearch/MaskFormer
# configs/mapillary-vistas-65/maskformer_R50_bs16_300k.yaml): ignore value 65 (head,
# ground-truth padding, crop and metric all use it), 1280×1280 crops, batch 16 (8 GPUs × 2),
# 300k iterations. Paper: 53.1 mIoU s.s., 55.4 m.s.+flip.
_base_ = [
    '../_base_/models/maskformer_r50-d32.py', '../_base_/datasets/mapillary_v1_65.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_adamw_160k.py'
]
max_iters = 300000
model = dict(
    data_preprocessor=dict(size=(1280, 1280), seg_pad_val=65),
    decode_head=dict(num_classes=65, ignore_index=65))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=30000)
default_hooks = dict(checkpoint=dict(interval=30000))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
