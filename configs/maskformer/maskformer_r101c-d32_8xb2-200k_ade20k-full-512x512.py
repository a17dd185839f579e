# ADE20K-Full, R101c (configs/ade20k-full-847/maskformer_R101c_bs16_200k.yaml): the DeepLab
# ResNet-101 described in maskformer_r101c-d32_8xb2-160k_ade20k-512x512.py (same pretrained-weight
# note). Paper: 17.4 mIoU s.s.
_base_ = './maskformer_r50-d32_8xb2-200k_ade20k-full-512x512.py'
model = dict(
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        stem_channels=128,
        multi_grid=(1, 2, 4),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/R-103_mmseg.pth')))
