# COCO panoptic, R101 + 6-layer encoder pixel decoder
# (configs/coco-panoptic/maskformer_panoptic_R101_bs64_554k.yaml). Paper: 47.6 PQ.
_base_ = './maskformer_r50-d32_8xb8-554k_coco-panoptic-800x1333.py'
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
