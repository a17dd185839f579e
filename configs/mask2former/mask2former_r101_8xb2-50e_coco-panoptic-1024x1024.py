# COCO panoptic, R101 (facebookresearch/Mask2Former
# configs/coco/panoptic-segmentation/maskformer2_R101_bs16_50ep.yaml): the R50 recipe with
# RESNETS.DEPTH 101 (frozen BatchNorm: NORM stays commented out), torchvision ImageNet weights.
# Official: 52.6 PQ (42.6 AP, 62.4 mIoU).
_base_ = './mask2former_r50_8xb2-50e_coco-panoptic-1024x1024.py'
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
