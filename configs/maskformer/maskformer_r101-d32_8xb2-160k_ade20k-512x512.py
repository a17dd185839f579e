# ADE20K-150, R101 (paper: 45.5 mIoU s.s.); everything else as R50.
_base_ = './maskformer_r50-d32_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
