# Mapillary Vistas v1.2, 65 classes, Swin-L pretrained on ImageNet-22k at 384
# (facebookresearch/Mask2Former configs/mapillary-vistas/semantic-segmentation/swin/
# maskformer2_swin_large_IN21k_384_bs16_300k.yaml):
# the R50 Vistas recipe (ignore 65, 1024×1024 crops, batch 16, 300k iterations) with Swin-L
# (window 12, embed 192, depths 2-2-18-2, heads 6-12-24-48, PRETRAIN_IMG_SIZE 384, drop path 0.3);
# NUM_OBJECT_QUERIES 100; the official run used 16 GPUs × 1 image (MODEL_ZOO.md).
# Official: 63.2 mIoU s.s., 64.7 m.s.+flip.
_base_ = [
    '../_base_/models/mask2former_swin-t.py', '../_base_/datasets/mapillary_v1_65_1024x1024.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
max_iters = 300000
model = dict(
    data_preprocessor=dict(size=(1024, 1024), seg_pad_val=65),
    backbone=dict(
        pretrain_img_size=384,
        embed_dims=192,
        window_size=12,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(
        in_channels=[192, 384, 768, 1536], num_classes=65, num_queries=100, ignore_index=65))
param_scheduler = [
    dict(type='PolyLR', eta_min=0, power=0.9, begin=0, end=max_iters, by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=30000)
default_hooks = dict(checkpoint=dict(interval=30000))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
