# ADE20K-150, R101 (facebookresearch/Mask2Former
# configs/ade20k/semantic-segmentation/maskformer2_R101_bs16_90k.yaml; despite its name it
# inherits MAX_ITER 160000 from the R50 yaml, and MODEL_ZOO.md lists 160k): the R50 recipe with
# RESNETS.DEPTH 101 and RESNETS.NORM "SyncBN" (trained, synchronised BatchNorm instead of the R50's
# frozen one), torchvision ImageNet weights. Official: 47.8 mIoU s.s., 50.1 m.s.+flip.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
model = dict(
    backbone=dict(
        depth=101,
        norm_cfg=dict(type='SyncBN', requires_grad=True),
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
