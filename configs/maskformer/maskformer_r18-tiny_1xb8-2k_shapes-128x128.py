# The demo: the tiny MaskFormer trained from scratch on the built-in Shapes data (2 CPU cores).
_base_ = [
    '../_base_/models/maskformer_r18-tiny.py', '../_base_/datasets/shapes.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_shapes_2k.py'
]
tta_model = dict(type='mmseg_maskformer.MaskFormerTTAModel')
