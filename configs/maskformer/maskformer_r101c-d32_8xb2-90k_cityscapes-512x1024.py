# Cityscapes, R101c (configs/cityscapes-19/maskformer_R101c_bs16_90k.yaml): the DeepLab ResNet-101
# described in maskformer_r101c-d32_8xb2-160k_ade20k-512x512.py (same pretrained-weight note).
# Paper: 79.7 mIoU s.s., 81.4 m.s.+flip.
_base_ = './maskformer_r101-d32_8xb2-90k_cityscapes-512x1024.py'
model = dict(
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        stem_channels=128,
        multi_grid=(1, 2, 4),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/R-103_mmseg.pth')))
