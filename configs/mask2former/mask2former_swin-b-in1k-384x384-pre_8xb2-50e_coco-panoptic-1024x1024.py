# COCO panoptic, Swin-B pretrained on ImageNet-1k at 384 (facebookresearch/Mask2Former
# configs/coco/panoptic-segmentation/swin/maskformer2_swin_base_384_bs16_50ep.yaml): window 12,
# embed 128, depths 2-2-18-2, heads 4-8-16-32, PRETRAIN_IMG_SIZE 384; the COCO recipe unchanged.
# Official: 55.1 PQ (45.2 AP, 65.1 mIoU).
_base_ = './mask2former_swin-t_8xb2-50e_coco-panoptic-1024x1024.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_base_patch4_window12_384_20220317-55b0104a.pth'  # noqa
model = dict(
    backbone=dict(
        pretrain_img_size=384,
        embed_dims=128,
        window_size=12,
        depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[128, 256, 512, 1024]))
