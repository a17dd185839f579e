# ADE20K-150, R50 (facebookresearch/MaskFormer configs/ade20k-150/maskformer_R50_bs16_160k.yaml):
# 512×512 crops, batch 16 (8 GPUs × 2), 160k iterations. Paper: 44.5 mIoU s.s., 46.7 m.s.+flip.
_base_ = [
    '../_base_/models/maskformer_r50-d32.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_adamw_160k.py'
]
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
