# COCO-Stuff-10k, R101 (configs/coco-stuff-10k-171/maskformer_R101_bs32_60k.yaml).
# Paper: 38.1 mIoU s.s., 39.8 m.s.+flip.
_base_ = './maskformer_r50-d32_8xb4-60k_coco-stuff10k-640x640.py'
model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
