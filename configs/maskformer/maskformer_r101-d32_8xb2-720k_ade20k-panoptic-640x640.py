# ADE20K panoptic, R101 + 6-layer encoder pixel decoder
# (configs/ade20k-150-panoptic/maskformer_panoptic_R101_bs16_720k.yaml; the zoo table's backbone
# column says "R50 + 6 Enc" for this row, the config is R101). Paper: 35.7 PQ.
_base_ = './maskformer_r50-d32_8xb2-720k_ade20k-panoptic-640x640.py'
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
