# COCO panoptic, Swin-S (configs/coco-panoptic/swin/maskformer_panoptic_swin_small_bs64_554k.yaml):
# Swin-T with depths 2-2-18-2, ImageNet-1k weights. Paper: 49.7 PQ.
_base_ = './maskformer_swin-t_8xb8-554k_coco-panoptic-800x1333.py'
checkpoint_file = 'https://download.openmmlab.com/mmsegmentation/v0.5/pretrain/swin/swin_small_patch4_window7_224_20220317-7ba6d6dd.pth'  # noqa
model = dict(
    backbone=dict(
        depths=[2, 2, 18, 2], init_cfg=dict(type='Pretrained', checkpoint=checkpoint_file)))
