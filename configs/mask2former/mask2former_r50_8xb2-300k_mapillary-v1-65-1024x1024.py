# Mapillary Vistas v1.2, 65 classes, R50 (facebookresearch/Mask2Former
# configs/mapillary-vistas/semantic-segmentation/maskformer2_R50_bs16_300k.yaml and
# Base-MapillaryVistas-SemanticSegmentation.yaml): ignore value 65 (IGNORE_VALUE 65: head,
# ground-truth padding, crop and metric), frozen BatchNorm, 1024×1024 crops (the mapper pads to a
# multiple of 1024), batch 16 (8 GPUs × 2), 300k iterations, poly decay.
# Official: 57.4 mIoU s.s., 59.0 m.s.+flip.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/mapillary_v1_65_1024x1024.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
max_iters = 300000
model = dict(
    data_preprocessor=dict(size=(1024, 1024), seg_pad_val=65),
    decode_head=dict(num_classes=65, ignore_index=65))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=30000)
default_hooks = dict(checkpoint=dict(interval=30000))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
