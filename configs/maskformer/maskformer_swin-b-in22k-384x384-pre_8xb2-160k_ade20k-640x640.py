# ADE20K-150, Swin-B pretrained on ImageNet-22k at 384
# (configs/ade20k-150/swin/maskformer_swin_base_IN21k_384_bs16_160k_res640.yaml): window 12,
# embed 128, depths 2-2-18-2, heads 4-8-16-32; 640×640 crops, batch 16, 160k iterations.
# Paper: 52.7 mIoU s.s., 53.9 m.s.+flip.
_base_ = [
    '../_base_/models/maskformer_swin-t.py', '../_base_/datasets/ade20k_640x640.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_swin_adamw_160k.py'
]
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_base_patch4_window12_384_22k_20220317-e5c09f74.pth'  # noqa
model = dict(
    data_preprocessor=dict(size=(640, 640)),
    backbone=dict(
        pretrain_img_size=384,
        embed_dims=128,
        window_size=12,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
