# Mapillary Vistas v1.2, 65 classes (label 65 = "unlabeled" is ignored: every place that pads or
# ignores uses 65 here), in mmseg's layout (data/mapillary/{training,validation}/images and
# v1.2/labels; class names from mmseg's mapillary_v1_65.py) with the official MaskFormer recipe
# (facebookresearch/MaskFormer configs/mapillary-vistas-65/Base-MapillaryVistas-65.yaml,
# mask_former/data/datasets/register_mapillary_vistas.py: ignore_label 65): training shortest
# edge int(x * 0.1 * 2048), x = 5..20, longest <= 8192, 1280×1280 crops, flip, SSD colour
# jitter; test shortest edge 2048, longest <= 2048.
# Test-time augmentation: the official config has no TEST.AUG for Vistas although the zoo reports
# a multi-scale result; here the single-scale test size scaled by 0.5..1.75 as for the other
# datasets: shortest edges 1024..3584, longest <= 3584 (= 1.75 × 2048), flip.
_base_ = 'mmseg::_base_/datasets/mapillary_v1_65.py'
ignore_index = 65
crop_size = (1280, 1280)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations'),
    dict(type='RandomChoiceResize', scales=[int(x * 0.1 * 2048) for x in range(5, 21)],
         resize_type='ResizeShortestEdge', max_size=8192),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=1.0, ignore_index=ignore_index),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeShortestEdge', scale=2048, max_size=2048),
    dict(type='LoadSizeCheckedAnnotations'),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='ResizeShortestEdge', scale=s, max_size=3584)
         for s in (1024, 1536, 2048, 2560, 3072, 3584)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadSizeCheckedAnnotations')],
        [dict(type='PackSegInputs')],
    ])
]
train_dataloader = dict(batch_size=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'], ignore_index=ignore_index)
test_evaluator = val_evaluator
