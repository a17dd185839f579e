# COCO-Stuff-10k, R101c (configs/coco-stuff-10k-171/maskformer_R101c_bs32_60k.yaml): the DeepLab
# ResNet-101 described in maskformer_r101c-d32_8xb2-160k_ade20k-512x512.py (same pretrained-weight
# note). Paper: 38.0 mIoU s.s., 39.3 m.s.+flip.
_base_ = './maskformer_r50-d32_8xb4-60k_coco-stuff10k-640x640.py'
model = dict(
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        stem_channels=128,
        multi_grid=(1, 2, 4),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/R-103_mmseg.pth')))
