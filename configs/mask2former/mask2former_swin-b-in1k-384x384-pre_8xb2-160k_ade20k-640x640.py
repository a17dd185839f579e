# ADE20K-150, Swin-B pretrained on ImageNet-1k at 384 (facebookresearch/Mask2Former
# configs/ade20k/semantic-segmentation/swin/maskformer2_swin_base_384_bs16_160k_res640.yaml):
# window 12, embed 128, depths 2-2-18-2, heads 4-8-16-32, PRETRAIN_IMG_SIZE 384; 640×640 crops
# (training shortest edge int(x * 0.1 * 640), longest <= 2560; test 640, TEST.AUG 320..1120),
# batch 16, 160k iterations. Official: 52.4 mIoU s.s., 53.7 m.s.+flip.
_base_ = [
    '../_base_/models/mask2former_swin-t.py', '../_base_/datasets/ade20k_640x640.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_base_patch4_window12_384_20220317-55b0104a.pth'  # noqa
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
