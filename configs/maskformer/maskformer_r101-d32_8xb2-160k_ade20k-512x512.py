# ADE20K-150, R101 (configs/ade20k-150/maskformer_R101_bs16_160k.yaml); everything else as R50.
# Paper: 45.5 mIoU s.s., 47.2 m.s.+flip.
_base_ = './maskformer_r50-d32_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
