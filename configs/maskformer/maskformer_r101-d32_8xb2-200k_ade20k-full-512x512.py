# ADE20K-Full, R101 (configs/ade20k-full-847/maskformer_R101_bs16_200k.yaml). Paper: 16.8 mIoU s.s.
_base_ = './maskformer_r50-d32_8xb2-200k_ade20k-full-512x512.py'
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
