# ADE20K-150, R101c (configs/ade20k-150/maskformer_R101c_bs16_160k.yaml): the DeepLab ResNet-101,
# i.e. three 3×3 stem convs 3→64→64→128 and res5 multi-grid dilations 1, 2, 4 at stride 32
# (detectron2's build_resnet_deeplab_backbone with RES5_MULTI_GRID [1, 2, 4], RES5_DILATION 1).
# mmseg's ResNetV1c(stem_channels=128) has that stem; its multi_grid values are the absolute
# dilations of the last stage's blocks. Paper: 46.0 mIoU s.s., 48.1 m.s.+flip.
#
# Pretrained weights: the official run starts from detectron2's DeepLab ImageNet ResNet-103
# (https://dl.fbaipublicfiles.com/detectron2/DeepLab/R-103.pkl). No mmseg/mmcv checkpoint has a
# 128-channel deep stem (open-mmlab://resnet101_v1c's stem ends at 64 channels), so training
# from ImageNet needs that file converted to mmseg's names at the path below; evaluating or
# fine-tuning a released MaskFormer checkpoint does not use it.
_base_ = './maskformer_r50-d32_8xb2-160k_ade20k-512x512.py'
model = dict(
    backbone=dict(
        type='ResNetV1c',
        depth=101,
        stem_channels=128,
        multi_grid=(1, 2, 4),
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/R-103_mmseg.pth')))
