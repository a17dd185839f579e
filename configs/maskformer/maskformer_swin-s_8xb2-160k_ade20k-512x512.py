# ADE20K-150, Swin-S (configs/ade20k-150/swin/maskformer_swin_small_bs16_160k.yaml): Swin-T with
# depths 2-2-18-2, ImageNet-1k weights. Paper: 49.8 mIoU s.s., 51.0 m.s.+flip.
_base_ = './maskformer_swin-t_8xb2-160k_ade20k-512x512.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_small_patch4_window7_224_20220317-7ba6d6dd.pth'  # noqa
model = dict(
    backbone=dict(
        depths=[2, 2, 18, 2], init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)))
