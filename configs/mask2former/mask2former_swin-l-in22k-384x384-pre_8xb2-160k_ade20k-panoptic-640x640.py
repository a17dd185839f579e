# ADE20K panoptic, Swin-L pretrained on ImageNet-22k at 384 (facebookresearch/Mask2Former
# configs/ade20k/panoptic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_160k.yaml): the
# R50 ADE20K panoptic recipe (640×640 crops, batch 16, 160k iterations, thresholds 0.8 / 0.8) with
# Swin-L (window 12, embed 192, depths 2-2-18-2, heads 6-12-24-48, PRETRAIN_IMG_SIZE 384, drop path
# 0.3) and 200 queries (NUM_OBJECT_QUERIES 200); the official run used 16 GPUs × 1 image
# (MODEL_ZOO.md). Official: 48.1 PQ (34.2 AP, 54.5 mIoU).
_base_ = [
    '../_base_/models/mask2former_swin-t.py', '../_base_/datasets/ade20k_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
custom_imports = dict(
    imports=['mmseg_maskformer.models', 'mmseg_maskformer.datasets', 'mmseg_maskformer.evaluation'],
    allow_failed_imports=False)
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
model = dict(
    data_preprocessor=dict(size=(640, 640)),
    backbone=dict(
        pretrain_img_size=384,
        embed_dims=192,
        window_size=12,
        depths=[2, 2, 18, 2],
        num_heads=[6, 12, 24, 48],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(
        in_channels=[192, 384, 768, 1536],
        num_classes=150,
        num_queries=200,
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8)))
# Test-time augmentation of panoptic outputs is not part of the official code.
tta_model = None
