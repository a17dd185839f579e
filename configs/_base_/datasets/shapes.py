# The built-in procedural Shapes dataset (tools/make_shapes_dataset.py writes it to data/shapes):
# 128×128 images, 6 classes (2 stuff, 4 things). Test-time augmentation as the official 512
# models scaled to the 128 test size: shortest edges 64..224 (0.5..1.75 ×128), longest <= 896
# (7 ×128), with and without horizontal flip.
# LoadSizeCheckedAnnotations: mmseg's LoadAnnotations that stops at an annotation whose size
# differs from its image's, naming both files.
dataset_type = 'ShapesDataset'
data_root = 'data/shapes'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadSizeCheckedAnnotations'),
    dict(type='PackSegInputs')
]
tta_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='TestTimeAug', transforms=[
        [dict(type='ResizeShortestEdge', scale=s, max_size=896)
         for s in (64, 96, 128, 160, 192, 224)],
        [dict(type='RandomFlip', prob=0., direction='horizontal'),
         dict(type='RandomFlip', prob=1., direction='horizontal')],
        [dict(type='LoadSizeCheckedAnnotations')],
        [dict(type='PackSegInputs')],
    ])
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
