# ADE20K-150, Swin-L pretrained on ImageNet-22k at 384 (facebookresearch/Mask2Former
# configs/ade20k/semantic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_160k_res640.yaml):
# Swin-B with embed 192, heads 6-12-24-48; 100 queries (the yaml keeps the R50 value); batch 16
# (the official run used 16 GPUs × 1 image, MODEL_ZOO.md). Official: 56.1 mIoU s.s., 57.3
# m.s.+flip.
_base_ = './mask2former_swin-b-in22k-384x384-pre_8xb2-160k_ade20k-640x640.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=192,
        num_heads=[6, 12, 24, 48],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[192, 384, 768, 1536]))
