# Cityscapes, Swin-L pretrained on ImageNet-22k at 384 (facebookresearch/Mask2Former
# configs/cityscapes/semantic-segmentation/swin/maskformer2_swin_large_IN21k_384_bs16_90k.yaml):
# Swin-B with embed 192, heads 6-12-24-48; NUM_OBJECT_QUERIES 100; batch 16 (the official run
# used 16 GPUs × 1 image, MODEL_ZOO.md). Official: 83.3 mIoU s.s., 84.3 m.s.+flip.
_base_ = './mask2former_swin-b-in22k-384x384-pre_8xb2-90k_cityscapes-512x1024.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_large_patch4_window12_384_22k_20220412-6580f57d.pth'  # noqa
model = dict(
    backbone=dict(
        embed_dims=192,
        num_heads=[6, 12, 24, 48],
        init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)),
    decode_head=dict(in_channels=[192, 384, 768, 1536], num_queries=100))
