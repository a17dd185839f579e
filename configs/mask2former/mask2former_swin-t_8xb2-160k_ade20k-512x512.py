# ADE20K-150, Swin-T (facebookresearch/Mask2Former
# configs/ade20k/semantic-segmentation/swin/maskformer2_swin_tiny_bs16_160k.yaml): the R50 recipe
# (512×512 crops, batch 16 = 8 GPUs × 2, 160k iterations, AdamW 1e-4, backbone lr ×0.1) with the
# Swin-T backbone (window 7, drop path 0.3, ImageNet-1k weights). Official: 47.7 mIoU s.s., 49.6
# m.s.+flip.
_base_ = [
    '../_base_/models/mask2former_swin-t.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
