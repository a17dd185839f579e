# COCO panoptic, Swin-T (configs/coco-panoptic/swin/maskformer_panoptic_swin_tiny_bs64_554k.yaml):
# the base pixel decoder (no encoder) with ENFORCE_INPUT_PROJ (a no-op here: the 768-channel res5
# memory needs the 1×1 projection to 256 anyway); the Swin optimisation with the 1500-iteration
# warm-up, then lr ×0.1 at 369,600 of 554,400 iterations; batch 64; thresholds 0.8 / 0.8; no
# padding to a multiple of 32. Paper: 47.7 PQ.
_base_ = [
    '../_base_/models/maskformer_swin-t.py', '../_base_/datasets/coco_panoptic.py',
    '../_base_/default_runtime.py', '../_base_/schedules/maskformer_swin_adamw_160k.py'
]
custom_imports = dict(
    imports=['mmseg_maskformer.models', 'mmseg_maskformer.datasets', 'mmseg_maskformer.evaluation'],
    allow_failed_imports=False)
max_iters = 554400
model = dict(
    type='mmseg_maskformer.MaskFormerSegmentor',
    data_preprocessor=dict(size=None, size_divisor=1, test_cfg=None),
    decode_head=dict(
        num_classes=133,
        enforce_input_project=True,
        test_cfg=dict(mode='panoptic', object_mask_threshold=0.8, overlap_threshold=0.8)))
param_scheduler = [
    # mmengine's LinearLR reaches factor 1 at step end - 1, detectron2's warm-up at 1500.
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0, end=1501),
    dict(type='MultiStepLR', milestones=[369600], gamma=0.1, begin=0, end=max_iters,
         by_epoch=False)
]
train_cfg = dict(max_iters=max_iters, val_interval=50000)
default_hooks = dict(checkpoint=dict(interval=50000))
# Test-time augmentation of panoptic outputs is not part of the official code.
tta_model = None
