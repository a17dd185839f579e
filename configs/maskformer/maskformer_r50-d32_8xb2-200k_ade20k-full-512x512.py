# ADE20K-Full, 847 classes, R50 (facebookresearch/MaskFormer
# configs/ade20k-full-847/maskformer_R50_bs16_200k.yaml): 16-bit labels with ignore value 65535
# (head, ground-truth padding, crop and metric all use it), 512×512 crops, batch 16 (8 GPUs × 2),
# 200k iterations. Paper: 16.0 mIoU s.s.
_base_ = [
    '../_base_/models/maskformer_r50-d32.py', '../_base_/datasets/ade20k_full.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_adamw_160k.py'
]
max_iters = 200000
model = dict(
    data_preprocessor=dict(seg_pad_val=65535),
    decode_head=dict(num_classes=847, ignore_index=65535))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=20000)
default_hooks = dict(checkpoint=dict(interval=20000))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
