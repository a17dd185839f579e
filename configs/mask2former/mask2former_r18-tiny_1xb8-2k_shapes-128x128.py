# A tiny Mask2Former on the built-in Shapes data, trained with the schedule of the tiny MaskFormer
# (configs/maskformer/maskformer_r18-tiny_1xb8-2k_shapes-128x128.py) for a like-for-like comparison.
_base_ = [
    '../_base_/models/mask2former_r18-tiny.py', '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_shapes_2k.py'
]
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
