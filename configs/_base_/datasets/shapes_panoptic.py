# The built-in Shapes data in COCO panoptic format (same images as shapes.py): one segment per
# thing instance (circle, rectangle, triangle, star) and per stuff class (background, water).
dataset_type = 'CocoPanopticSegDataset'
data_root = 'data/shapes'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackPanopticSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackPanopticSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='panoptic_train.json',
        img_suffix='.png',
        data_prefix=dict(img_path='img_dir/train', seg_map_path='panoptic/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='panoptic_val.json',
        img_suffix='.png',
        data_prefix=dict(img_path='img_dir/val', seg_map_path='panoptic/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='PanopticQualityMetric'), dict(type='IoUMetric', iou_metrics=['mIoU'])]
test_evaluator = val_evaluator
