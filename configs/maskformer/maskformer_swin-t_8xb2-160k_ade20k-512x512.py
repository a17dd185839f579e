# ADE20K-150, Swin-T (configs/ade20k-150/swin/maskformer_swin_tiny_bs16_160k.yaml): 512×512
# crops, batch 16, 160k iterations, the Swin optimisation. Paper: 46.7 mIoU s.s., 48.8 m.s.+flip.
_base_ = [
    '../_base_/models/maskformer_swin-t.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_swin_adamw_160k.py'
]
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
