# ADE20K-150, Swin-L pretrained on ImageNet-22k at 384
# (configs/ade20k-150/swin/maskformer_swin_large_IN21k_384_bs16_160k_res640.yaml): Swin-B with
# embed 192, heads 6-12-24-48. Paper: 54.1 mIoU s.s., 55.6 m.s.+flip.
_base_ = './maskformer_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=192,
        num_heads=[6, 12, 24, 48],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))
