# ADE20K-150, R50 (facebookresearch/Mask2Former
# configs/ade20k/semantic-segmentation/maskformer2_R50_bs16_160k.yaml): 512×512 crops, batch 16
# (8 GPUs × 2), 160k iterations, AdamW 1e-4 with weight decay 0.05, backbone lr ×0.1, gradient
# clipping 0.01. Official: 47.2 mIoU s.s., 49.2 m.s.+flip; 44M parameters.
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
