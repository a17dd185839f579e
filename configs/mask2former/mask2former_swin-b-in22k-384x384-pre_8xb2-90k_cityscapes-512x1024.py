# Cityscapes, Swin-B pretrained on ImageNet-22k at 384 (facebookresearch/Mask2Former
# configs/cityscapes/semantic-segmentation/swin/maskformer2_swin_base_IN21k_384_bs16_90k.yaml):
# window 12, embed 128, depths 2-2-18-2, heads 4-8-16-32, PRETRAIN_IMG_SIZE 384; the Cityscapes
# data recipe unchanged (512×1024 crops). Official: 83.3 mIoU s.s., 84.5 m.s.+flip.
_base_ = './mask2former_swin-t_8xb2-90k_cityscapes-512x1024.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_base_patch4_window12_384_22k_20220317-e5c09f74.pth'  # noqa
model = dict(
    backbone=dict(
        pretrain_img_size=384,
        embed_dims=128,
        window_size=12,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]))
