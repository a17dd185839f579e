# ADE20K panoptic, R50 (facebookresearch/Mask2Former
# configs/ade20k/panoptic-segmentation/maskformer2_R50_bs16_160k.yaml and
# Base-ADE20K-PanopticSegmentation.yaml): frozen BatchNorm, 100 queries; training shortest edge
# int(x * 0.1 * 640), longest <= 2560, 640×640 crops (the mapper pads to a multiple of 640), flip,
# SSD colour jitter; batch 16 (8 GPUs × 2), 160k iterations, poly decay; test shortest edge 640,
# longest <= 2560; panoptic inference with object_mask_threshold 0.8 and overlap_threshold 0.8.
# Official: 39.7 PQ (26.5 AP, 46.1 mIoU).
_base_ = [
    '../_base_/models/mask2former_r50.py', '../_base_/datasets/ade20k_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/mask2former_adamw_160k.py'
]
custom_imports = dict(
    imports=['mmseg_maskformer.models', 'mmseg_maskformer.datasets', 'mmseg_maskformer.evaluation'],
    allow_failed_imports=False)
model = dict(
    data_preprocessor=dict(size=(640, 640)),
    decode_head=dict(
        num_classes=150,
        num_queries=100,
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8)))
# Test-time augmentation of panoptic outputs is not part of the official code.
tta_model = None
