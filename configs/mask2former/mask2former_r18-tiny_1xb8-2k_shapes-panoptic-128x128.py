# Panoptic Mask2Former on the built-in Shapes data: the tiny Mask2Former trained on per-instance
# targets, evaluated with PQ (and mIoU from the same forward pass), as the panoptic MaskFormer.
_base_ = [
    '../_base_/models/mask2former_r18-tiny.py', '../_base_/datasets/shapes_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_shapes_2k.py'
]
custom_imports = dict(
    imports=['mmseg_maskformer.models', 'mmseg_maskformer.datasets', 'mmseg_maskformer.evaluation'],
    allow_failed_imports=False)
model = dict(
    type='mmseg_maskformer.MaskFormerSegmentor',
    decode_head=dict(
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8)))
# Test-time augmentation of panoptic outputs is not part of the official code.
tta_model = None
