# Cityscapes, R101 (facebookresearch/Mask2Former
# configs/cityscapes/semantic-segmentation/maskformer2_R101_bs16_90k.yaml): the R50 recipe with
# RESNETS.DEPTH 101 (SyncBN), torchvision ImageNet weights. Official: 80.1 mIoU s.s., 81.9
# m.s.+flip.
_base_ = './mask2former_r50_8xb2-90k_cityscapes-512x1024.py'
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
